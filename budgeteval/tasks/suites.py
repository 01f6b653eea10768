"""Suites are data: a small YAML file names a list of tasks, and `--tasks NAME` stands for all of them.

Built-in suites live in `tasks/suites/*.yaml` (installed as `budgeteval.builtin_tasks/suites`):
`name`, `description` and `tasks` (built-in task names or task YAML paths). This module reads them
and expands the names a user passes to `--tasks`; it loads no task data.
"""

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from budgeteval.errors import UserError


@dataclass(frozen=True)
class Suite:
    """A named list of tasks."""

    name: str
    """The name `--tasks` accepts."""
    description: str
    """One line for `budgeteval tasks`."""
    tasks: tuple[str, ...]
    """The tasks it stands for, in order."""
    yaml_path: str
    """The file it was read from."""


def builtin_suite_paths() -> dict[str, Path]:
    """Map each built-in suite name to its YAML file."""
    folder = resources.files("budgeteval.builtin_tasks").joinpath("suites")
    if not folder.is_dir():
        return {}
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir()
            if entry.name.endswith((".yaml", ".yml"))}


def load_suite_file(path: Path) -> Suite:
    """Read and validate one suite YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise UserError(f"Cannot read suite file {path}: {error}.") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(tasks, list) or not tasks or not all(isinstance(task, str) and task for task in tasks):
        raise UserError(f"Suite file {path} needs 'tasks': a non-empty list of task names.")
    if not data.get("name"):
        raise UserError(f"Suite file {path} is missing the required field 'name'.")
    return Suite(str(data["name"]), str(data.get("description", "")), tuple(tasks), str(path))


def builtin_suites() -> dict[str, Suite]:
    """Every built-in suite by name."""
    return {name: load_suite_file(path) for name, path in sorted(builtin_suite_paths().items())}


def expand_tasks(names) -> tuple[str, ...]:
    """The task names `--tasks` stands for: each built-in suite replaced by its tasks, in order, a task
    named twice kept once (its first place)."""
    suites = builtin_suites()
    expanded: list[str] = []
    for name in names:
        for task in (suites[name].tasks if name in suites else (name,)):
            if task not in expanded:
                expanded.append(task)
    return tuple(expanded)
