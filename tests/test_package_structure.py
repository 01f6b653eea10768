"""The package's module graph: stages in data-flow order, no import cycles, imports inside functions counted.

Data flows one way (docs/design.md, "Layout"): a module may import its own stage and earlier ones,
never a later one; a cycle, even through a lazy import, means two modules each need the other and
one of them holds something that belongs elsewhere.
"""

import ast
from pathlib import Path

import budgeteval

PACKAGE = Path(budgeteval.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            targets.update(candidate for candidate in candidates if candidate in modules and candidate != name)
        # Importing a submodule runs its package's __init__ too, but that edge is Python's, not ours.
        graph[name] = targets
    return graph


STAGES = ("tasks", "generation", "rundir", "scoring", "sweep", "ingest", "report", "analysis", "plots", "viewer", "train",
          "publish")
"""The stage packages in the order data flows through them."""

FOUNDATION = {"budgeteval.errors", "budgeteval.processes", "budgeteval.atomic"}
"""Modules every stage may use: they import no other budgeteval module."""

TOP = {"budgeteval", "budgeteval.cli", "budgeteval.api"}
"""The command line and the Python API, on top of every stage."""


def stage_rank(module: str) -> int:
    """The position of `module`'s stage in the data flow (foundation first, the API and CLI last)."""
    if module in FOUNDATION:
        return -1
    if module in TOP:
        return len(STAGES)
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in STAGES:
        raise AssertionError(f"{module} belongs to no stage: put it in a stage package or name it in the test")
    return STAGES.index(parts[1])


def later_stage_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module from a later stage than the importer's, as "importer -> imported"."""
    return sorted(f"{source} -> {target}" for source, targets in graph.items() for target in targets
                  if stage_rank(target) > stage_rank(source))


def find_cycle(graph: dict[str, set[str]]):
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "budgeteval.rundir" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_imports_from_a_later_stage():
    graph = import_graph()
    assert later_stage_imports(graph) == []


def test_the_stage_check_finds_an_import_from_a_later_stage():
    graph = {"budgeteval.report.tables": {"budgeteval.plots.budget"}, "budgeteval.plots.budget": {"budgeteval.errors"}}
    assert later_stage_imports(graph) == ["budgeteval.report.tables -> budgeteval.plots.budget"]
    assert later_stage_imports({"budgeteval.errors": {"budgeteval.tasks.loading"}}) == [
        "budgeteval.errors -> budgeteval.tasks.loading"]


def test_the_top_level_holds_only_the_stages_and_a_handful_of_modules():
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == {"api", "atomic", "cli", "errors", "processes"}
    folders = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert folders == set(STAGES)


def test_foundation_modules_import_nothing_of_the_package():
    graph = import_graph()
    assert {module: graph[module] for module in FOUNDATION if graph[module]} == {}
