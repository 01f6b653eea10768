"""Results broken down by problem metadata: `budgeteval report RUN --by GROUP`.

A task declares `groups:` in its YAML (MATH-500 `level` and `subject`, OlympiadBench `subfield`, ...);
a run stores each problem's group values beside it in `problems/<task>.parquet`. This module splits
a run's scores by the values of one group and computes the usual metrics over each subset of
problems (problems weighted equally inside a subset, exactly as `metrics.compute_metrics` does for
a whole task), then renders one per-budget table per (task, value). It reads the run directory only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from budgeteval.errors import UserError
from budgeteval.rundir.problems import natural_key, read_problem_groups


@dataclass(frozen=True)
class GroupSubset:
    """The scores of the problems of one task that share one value of a group."""

    task: str
    """The task."""
    value: str
    """The group value (`budgeteval.rundir.problems.MISSING_GROUP_VALUE` for problems without one)."""
    problem_ids: tuple[str, ...]
    """Its problems, in the run's problem order."""
    scores: pd.DataFrame
    """The rows of `scores.parquet` for those problems."""


def split_by_group(run_dir: Path, group: str) -> list[GroupSubset]:
    """Every (task, group value) subset of a run's scores, tasks in run order, values in natural order.

    Tasks whose problems carry no `group` column are left out; a run in which no task has it is a
    `UserError` naming the groups it does have.
    """
    from budgeteval.report.runs import load_run

    run = load_run(run_dir)
    scores = run.scores
    declared = read_problem_groups(run.path, run.tasks)
    available = set(declared["group"])
    subsets = []
    for task in run.tasks:
        rows = declared[(declared["task"] == task) & (declared["group"] == group)]
        if rows.empty:
            continue
        task_scores = scores[scores["task"] == task]
        by_value: dict[str, list[str]] = {}
        for problem_id, value in zip(rows["problem_id"], rows["value"]):
            by_value.setdefault(value, []).append(problem_id)
        for value in sorted(by_value, key=natural_key):
            ids = tuple(by_value[value])
            subset = task_scores[task_scores["problem_id"].isin(ids)]
            if not subset.empty:
                subsets.append(GroupSubset(task, value, ids, subset))
    if not subsets:
        have = ", ".join(sorted(available)) or "none (the tasks declare no groups, or the run predates them)"
        raise UserError(f"--by {group}: no task of {run_dir} stores the group {group!r}; its groups: {have}.")
    return subsets


def format_group_report(run_dir: Path, group: str, ks: Sequence[int] | None = None, fmt: str = "markdown") -> str:
    """The report of `budgeteval report RUN --by GROUP`: markdown tables per (task, value), or the
    long metrics table with `group`, `group_value` and `problems` columns in front (csv/json)."""
    from budgeteval.report.tables import REPORT_FORMATS, format_report
    from budgeteval.scoring.metrics import compute_metrics, count_timeouts, normalise_metrics

    if fmt not in REPORT_FORMATS:
        raise UserError(f"Unknown report format {fmt!r}: choose one of {', '.join(REPORT_FORMATS)}.")
    subsets = split_by_group(Path(run_dir), group)
    if ks is None:
        n = min(int(subset.scores.groupby(["mode", "budget", "problem_id"]).size().min()) for subset in subsets)
        ks = sorted({1, n})
    labelled, timeouts, order, long_tables = [], [], [], []
    for subset in subsets:
        metrics = compute_metrics(subset.scores, ks)
        count = len(subset.problem_ids)
        label = f"{subset.task}: {group} = {subset.value} ({count} problem{'' if count == 1 else 's'})"
        order.append(label)
        labelled.append(metrics.assign(task=label))
        timeouts.append(count_timeouts(subset.scores).assign(task=label))
        long_tables.append(normalise_metrics(metrics).assign(group=group, group_value=subset.value,
                                                             problems=len(subset.problem_ids)))
    if fmt == "markdown":
        return format_report(pd.concat(labelled, ignore_index=True), "markdown", ks=ks,
                             timeouts=pd.concat(timeouts, ignore_index=True), order=order)
    table = pd.concat(long_tables, ignore_index=True)
    keep = table["k"].isna() | table["k"].isin(list(ks))
    table = table[keep.astype(bool)]
    table = table[["group", "group_value", "problems"] + [c for c in table.columns
                                                          if c not in ("group", "group_value", "problems")]]
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n", float_format=lambda x: repr(float(x)))
    records = json.loads(table.to_json(orient="records"))
    return json.dumps(records, indent=2) + "\n"
