"""The per-step metrics table of a training run: budget metrics at every evaluated training step.

`metrics_by_step.csv` in a training log folder holds the columns of a run's `metrics.csv` (task,
mode, budget, metric, k, value, stderr, ci_low, ci_high) with `step` first, one block of rows per
evaluated step. `budgeteval watch` (verl) and `BudgetEvalCallback` (TRL) append to it and
`budgeteval plot DIR --by step` reads it. Each append rewrites the file atomically, sorted, so the
same metrics give the same bytes and a step evaluated twice keeps its latest rows only.
Not for per-sample scores (those stay in each step's run directory, for `budgeteval watch`).
"""

import os
from pathlib import Path

import pandas as pd

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError
from budgeteval.scoring.metrics import METRIC_COLUMNS, normalise_metrics

STEP_TABLE = "metrics_by_step.csv"
"""File name of the per-step table inside a training log folder."""

STEP_COLUMNS = ("step",) + tuple(METRIC_COLUMNS)
"""Columns of the per-step table, in file order."""


def step_table_path(folder: str | os.PathLike) -> Path:
    """The per-step table of `folder` (or `folder` itself when it names the CSV file)."""
    folder = Path(folder)
    return folder if folder.suffix == ".csv" else folder / STEP_TABLE


def read_step_metrics(folder: str | os.PathLike) -> pd.DataFrame:
    """Load the per-step table of `folder` (a `UserError` when there is none)."""
    path = step_table_path(folder)
    if not path.is_file():
        raise UserError(
            f"No per-step metrics at {path}: point at the folder `budgeteval watch --out` or BudgetEvalCallback wrote."
        )
    table = pd.read_csv(path, dtype={"task": str, "mode": str, "metric": str, "k": "Int64"})
    if "step" not in table.columns:
        raise UserError(f"{path} has no step column: it is not a per-step metrics table.")
    return _normalise(table)


def append_step_metrics(folder: str | os.PathLike, step: int, metrics: pd.DataFrame) -> Path:
    """Add (or replace) the rows of training step `step` in the per-step table of `folder`; returns its path."""
    path = step_table_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    block = normalise_metrics(metrics).assign(step=int(step))
    if path.is_file():
        existing = read_step_metrics(path)
        block = pd.concat([existing[existing["step"] != int(step)], block], ignore_index=True)
    table = _normalise(block)
    write_text_atomic(path, table.to_csv(index=False, lineterminator="\n", float_format=lambda x: repr(float(x))))
    return path


def _normalise(table: pd.DataFrame) -> pd.DataFrame:
    """Steps ascending; within a step the row order and dtypes `normalise_metrics` gives."""
    steps = table["step"].astype("int64")
    blocks = [normalise_metrics(table[steps == step]).assign(step=int(step)) for step in sorted(steps.unique())]
    if not blocks:
        return pd.DataFrame(columns=list(STEP_COLUMNS))
    return pd.concat(blocks, ignore_index=True).loc[:, list(STEP_COLUMNS)]
