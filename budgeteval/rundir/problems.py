"""A run's problems (`RUN/problems/<task>.parquet`): the one writer and the readers of the problems and their groups.

Each task's problems are stored with the columns of `BASE_PROBLEM_COLUMNS` (problem_id, question,
reference) and, after them, one text column per group the task declares (MATH-500's `level` and
`subject`, ...); files written before groups existed simply lack those. Every later stage reads the
problems and their groups through this module: `read_problems` (by id, for scoring and merging),
`read_problem_frame` (a frame) and `read_problem_groups` (the groups, long). `MISSING_GROUP_VALUE`
is the one text shown for a problem without a value for a group, and `natural_key` the one order of
problem ids and group values (`p2` before `p10`, `Level 2` before `Level 10`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from budgeteval.atomic import write_atomic
from budgeteval.errors import UserError
from budgeteval.rundir.layout import problems_path
from budgeteval.tasks.loading import BASE_PROBLEM_COLUMNS

if TYPE_CHECKING:  # pandas is imported where a frame is built: writing and scoring need none
    import pandas as pd

PROBLEM_SCHEMA = pa.schema([(name, pa.string()) for name in BASE_PROBLEM_COLUMNS])
"""The columns every problems file starts with; a task's groups follow as nullable strings."""

MISSING_GROUP_VALUE = "(none)"
"""The value of a group for a problem whose data had none (in `read_problem_groups`, reports and analyses)."""

GROUP_COLUMNS = ("task", "problem_id", "group", "value")
"""Columns of `read_problem_groups`."""


def natural_key(value) -> tuple:
    """Sort key for problem ids and group values: digit runs compare as numbers (`p2` < `p10`, `Level 2` <
    `Level 10`), text case-insensitively, `MISSING_GROUP_VALUE` last (texts equal that way keep their order)."""
    text = str(value)
    # re.split with a group puts the digit runs at the odd positions.
    return (text == MISSING_GROUP_VALUE, [(0, int(piece), "") if position % 2 else (1, 0, piece.lower())
                                          for position, piece in enumerate(re.split(r"(\d+)", text)) if piece])


def group_columns_of(columns: Sequence[str]) -> list[str]:
    """The group columns among a problems file's columns: all but `BASE_PROBLEM_COLUMNS`, in file order."""
    return [str(column) for column in columns if column not in BASE_PROBLEM_COLUMNS]


def write_problems(run_dir: Path, task: str, rows: list[dict]) -> None:
    """Store a task's problems (id, question, reference) so scoring never needs the dataset again.

    Any other key of the rows (the task's groups: MATH-500's `level`, ...) becomes a nullable string
    column after the three of `PROBLEM_SCHEMA`; files written before groups existed simply lack them.
    """
    extra = list(dict.fromkeys(key for row in rows for key in row if key not in PROBLEM_SCHEMA.names))
    schema = pa.schema(list(PROBLEM_SCHEMA) + [(name, pa.string()) for name in extra])
    table = pa.Table.from_pylist(
        [{**row, **{name: None if row.get(name) is None else str(row[name]) for name in extra}} for row in rows],
        schema=schema)
    write_atomic(problems_path(run_dir, task), lambda temp: pq.write_table(table, temp))


def _read_table(run_dir: Path, task: str, missing_ok: bool) -> pa.Table | None:
    """The task's problems file as read (None when it is absent and `missing_ok`)."""
    path = problems_path(run_dir, task)
    if not path.is_file():
        if missing_ok:
            return None
        raise UserError(f"Run {run_dir} has no problems file for task {task} ({path}); the run directory is incomplete.")
    return pq.read_table(path)


def read_problems(run_dir: Path, task: str) -> dict[str, dict]:
    """problem_id -> {question, reference, and the task's groups if any} for one task of a run."""
    return {row["problem_id"]: row for row in _read_table(run_dir, task, missing_ok=False).to_pylist()}


def read_problem_frame(run_dir: Path, task: str, missing_ok: bool = False) -> pd.DataFrame:
    """One task's problems as a frame: `BASE_PROBLEM_COLUMNS` (problem_id as text), then its group
    columns as stored (None where a problem has no value).

    A missing file is a `UserError`, or with `missing_ok` a frame with the base columns and no rows.
    """
    import pandas as pd

    table = _read_table(run_dir, task, missing_ok)
    if table is None:
        return pd.DataFrame(columns=list(BASE_PROBLEM_COLUMNS))
    frame = table.to_pandas()
    frame["problem_id"] = frame["problem_id"].astype(str)
    base = [column for column in BASE_PROBLEM_COLUMNS if column in frame.columns]
    return frame[base + group_columns_of(frame.columns)]


def read_problem_groups(run_dir: Path, tasks: Sequence[str], missing_ok: bool = False) -> pd.DataFrame:
    """The groups of the problems of `tasks`, long: task, problem_id, group (the column), value (as text,
    `MISSING_GROUP_VALUE` where the problem has none).

    Rows come task by task, then group by group in file order, then in the file's problem order; no
    rows when no task stores a group. A task without a problems file is a `UserError`, or skipped
    with `missing_ok`.
    """
    import pandas as pd

    rows = []
    for task in tasks:
        table = _read_table(run_dir, task, missing_ok)
        if table is None:
            continue
        ids = [str(problem_id) for problem_id in table.column("problem_id").to_pylist()]
        for group in group_columns_of(table.column_names):
            values = table.column(group).to_pylist()
            rows += [(task, problem_id, group, MISSING_GROUP_VALUE if value is None else str(value))
                     for problem_id, value in zip(ids, values)]
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))
