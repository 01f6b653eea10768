"""The Python API on top of every stage: `Run` with the views later stages draw, and its loaders.

`budgeteval.report.runs.Run` reads a run directory's files; this `Run` adds what needs the plots
stage (which the report stage may not import). `budgeteval.load_run` returns this class.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from budgeteval.report import runs

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class Run(runs.Run):
    """One run directory, its label, its files as pandas frames, and its figures."""

    def figures(self, *others: runs.Run, **options: Any) -> dict[str, Figure]:
        """The budget-sweep figures of this run (and `others`), by name (see `budgeteval.plots.budget.budget_figures`)."""
        from budgeteval.plots.budget import budget_figures

        return budget_figures([self, *others], **options)


def load_run(path: str | os.PathLike, label: str | None = None) -> Run:
    """Open the run directory at `path` (a `UserError` if it is not one), labelled `label` or by default."""
    return runs.load_run(path, label, kind=Run)


def load_runs(arguments: Sequence[str]) -> list[Run]:
    """Load the runs named on a command line (`RUN` or `RUN=label`), refusing two runs with one label."""
    return runs.load_runs(arguments, kind=Run)
