"""Write the viewer's static site: the page, the figures, the index and one script file per problem.

Layout of the site folder:

    index.html  viewer.js  viewer.css      the page (copied from budgeteval/viewer/static/)
    figures/<name>.svg                     `budgeteval.plots.budget` figures of the runs
    data/index.js                          the index: overview tables, comparison, problem summaries
    data/problems/<key>.js                 one problem's texts and verdicts, loaded when it is opened

Data files are JavaScript that call a function of the page (`budgeteval.index(...)`,
`budgeteval.problem(...)`), because a page opened from `file://` may load scripts but not
`fetch` files. Every JSON payload goes through `script_json`, which escapes what could end a
script element or a string literal, so a model's output can never become markup or code.
Same runs, same bytes: keys are sorted and nothing depends on the time or the machine.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from budgeteval.errors import UserError
from budgeteval.rundir.problems import MISSING_GROUP_VALUE
from budgeteval.viewer.data import (
    INDEX_FORMAT_VERSION,
    comparison_tables,
    overview_tables,
    problem_entries,
    run_facts,
    task_budgets,
    task_groups,
)

STATIC_FILES = ("index.html", "viewer.js", "viewer.css")
"""The page's own files, copied from the package's `static/` folder."""

MARKER_FILE = ".budgeteval-view"
"""Present in a folder `build_site` wrote; only such a folder (or an empty one) is overwritten."""

_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def script_json(value) -> str:
    """`value` as JSON that is safe inside a script: no `</script>`, `<!--`, `&` or raw U+2028/U+2029.

    These characters only occur inside JSON strings, where their `\\uXXXX` escapes mean the same
    string, so the parsed value is unchanged.
    """
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "".join(_SCRIPT_ESCAPES.get(char, char) for char in text) if any(
        char in text for char in _SCRIPT_ESCAPES) else text


def problem_file(key: int) -> str:
    """Path of a problem's payload inside the site."""
    return f"data/problems/{key:06d}.js"


def build_site(runs: Sequence, out_dir, baseline: str | None = None, k: int | None = None,
               progress=None) -> Path:
    """Write the viewer site of `runs` (`budgeteval.report.runs.Run`, the baseline first) into `out_dir`.

    `baseline` and `k` choose the comparison table's baseline and k (defaults as `compare`);
    `progress(done)` is called after each problem. Returns the path of `index.html`.
    """
    from budgeteval.report.compare import check_unique_labels

    runs = list(runs)
    if not runs:
        raise UserError("view needs at least one run directory.")
    check_unique_labels(runs)
    if baseline is not None:
        runs = [run for run in runs if run.label == baseline] + [run for run in runs if run.label != baseline]
    out_dir = _prepare(Path(out_dir))
    static = resources.files("budgeteval.viewer") / "static"
    for name in STATIC_FILES:
        (out_dir / name).write_bytes((static / name).read_bytes())
    figures, figure_notes = _write_figures(runs, out_dir / "figures", k)

    problems_dir = out_dir / "data" / "problems"
    problems_dir.mkdir(parents=True)
    summaries = []
    for done, entry in enumerate(problem_entries(runs, problem_file), start=1):
        (out_dir / entry.summary["file"]).write_text(f"budgeteval.problem({script_json(entry.payload)});\n",
                                                     encoding="utf-8")
        summaries.append(entry.summary)
        if progress:
            progress(done)
    index = {
        "format": INDEX_FORMAT_VERSION,
        "runs": [{"label": run.label, "model": run.model, "path": str(run.path),
                  "think_end": run_facts(run).think_end} for run in runs],
        "overview": [overview_tables(run) for run in runs],
        "comparison": comparison_tables(runs, runs[0].label, k),
        "figures": figures, "figure_notes": figure_notes,
        "budgets": task_budgets(runs), "groups": task_groups(runs), "missing_group_value": MISSING_GROUP_VALUE,
        "modes": sorted({str(mode) for run in runs for mode in run.scores["mode"].unique()}),
        "problems": summaries,
    }
    (out_dir / "data" / "index.js").write_text(f"budgeteval.index({script_json(index)});\n", encoding="utf-8")
    (out_dir / MARKER_FILE).write_text("written by budgeteval view\n", encoding="utf-8")
    return out_dir / "index.html"


def _prepare(out_dir: Path) -> Path:
    """An empty `out_dir`, or a previous site in it cleared; any other non-empty folder is refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir} is a file: name a folder for the site.")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER_FILE).is_file():
            raise UserError(f"-o {out_dir} is not empty and holds no earlier `budgeteval view` site: "
                            f"name an empty or new folder.")
        for name in ("data", "figures"):
            shutil.rmtree(out_dir / name, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def _write_figures(runs: Sequence, folder: Path, k: int | None) -> tuple[list[dict], list[str]]:
    """The `budgeteval plot` figures as SVG (with `--kind tokens` when every run has an end-of-thinking
    marker); a figure the runs cannot give is left out with a note."""
    import matplotlib.pyplot as plt

    from budgeteval.plots.budget import BUDGET_FIGURES, TOKEN_FIGURES, PlotOptions, load_figure_function
    from budgeteval.plots.style import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    figures, notes = [], []
    thinking = all(run_facts(run).think_end for run in runs)
    for name, spec in {**BUDGET_FIGURES, **(TOKEN_FIGURES if thinking else {})}.items():
        try:
            figure = load_figure_function(spec)(runs, PlotOptions(k=k))
        except UserError as error:
            notes.append(f"{name}: {error}")
            continue
        path = save_figure(figure, folder / f"{name}.svg")
        path.chmod(0o644)  # written through a private temp file; the site is for reading
        plt.close(figure)
        figures.append({"name": name, "file": f"figures/{name}.svg"})
    return figures, notes
