"""The documentation holds together: every relative link in README.md and docs/*.md resolves (the
file, and the #anchor as GitHub writes heading anchors), the README stays a front door, and every
option of every command appears in the CLI reference."""

import re
from pathlib import Path

import click
import pytest

from budgeteval.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found, fence = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            found.add(slug(line.lstrip("#")))
    return found


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # code is not a link
    text = re.sub(r"`[^`\n]*`", "", text)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_slug_is_github_s():
    assert slug("Importing another harness's output") == "importing-another-harnesss-output"
    assert slug("`budgeteval run`") == "budgeteval-run"
    assert slug("Answer sources and policies") == "answer-sources-and-policies"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading with anchor #{anchor} in {resolved.name})")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_is_a_front_door():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README's table of docs pages lacks docs/{page.name}"


def _options():
    for name, command in sorted(main.commands.items()):
        for param in command.params:
            if isinstance(param, click.Option):
                for flag in param.opts + param.secondary_opts:
                    yield name, flag


def test_every_cli_option_is_in_the_cli_reference():
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = [f"{name} {flag}" for name, flag in _options() if not re.search(rf"`[^`]*{re.escape(flag)}\b", reference)
               or f"budgeteval {name}" not in reference]
    assert not missing, f"docs/cli.md does not mention: {', '.join(missing)}"
