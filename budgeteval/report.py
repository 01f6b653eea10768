"""Render a metrics table for people: one markdown table per task, or the long table as CSV/JSON.

Takes the output of `budgeteval.metrics.compute_metrics` (or `read_metrics`) and, optionally,
`count_timeouts`. It computes nothing new and reads no files: comparisons between runs and plots
live elsewhere.
"""

from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from budgeteval.budgets import format_budget
from budgeteval.errors import UserError
from budgeteval.metrics import ACCURACY_METRICS, metrics_to_csv, metrics_to_json, normalise_metrics

REPORT_FORMATS = ("markdown", "csv", "json")
"""Formats `format_report` can write."""

MODE_ORDER = ("cutoff", "forced", "conditioned")
"""Order of budget modes in side-by-side tables."""

_EMPTY = "—"


def format_report(
    metrics: pd.DataFrame,
    fmt: str = "markdown",
    ks: Sequence[int] | None = None,
    timeouts: pd.DataFrame | None = None,
) -> str:
    """Return the report text in `fmt` (markdown, csv or json).

    markdown: one table per task; a row per budget x mode; columns mean@k, pass@k and maj@k for
    each k in `ks` (all k in `metrics` when None) as percentages with one decimal and ± the
    standard error over problems, then mean and median tokens, truncation rate (percent), and
    timed-out verifications when the task has any (`timeouts` from `count_timeouts`).
    csv/json: the long metrics table as written to `metrics.csv`/`metrics.json`, restricted to
    `ks` for the k-metrics; `timeouts` is not included.
    """
    if fmt not in REPORT_FORMATS:
        raise UserError(f"Unknown report format {fmt!r}: choose one of {', '.join(REPORT_FORMATS)}.")
    metrics = _select_ks(normalise_metrics(metrics), ks)
    if fmt == "csv":
        return metrics_to_csv(metrics)
    if fmt == "json":
        return metrics_to_json(metrics)
    return _format_markdown(metrics, timeouts)


def _select_ks(metrics: pd.DataFrame, ks: Sequence[int] | None) -> pd.DataFrame:
    """Keep the k-metrics for the requested ks (all other metrics stay); unknown k is an error."""
    if ks is None:
        return metrics
    ks = sorted({int(k) for k in ks})
    available = {int(k) for k in metrics["k"].dropna()}
    missing = [k for k in ks if k not in available]
    if missing:
        have = ", ".join(map(str, sorted(available))) or "none"
        raise UserError(
            f"k={missing[0]} is not in these metrics (they have k = {have}); recompute the metrics with that k."
        )
    keep = metrics["k"].isna() | metrics["k"].isin(ks)
    return metrics[keep.astype(bool)]


def _format_markdown(metrics: pd.DataFrame, timeouts: pd.DataFrame | None) -> str:
    sections = [
        "Accuracies in percent, ± standard error over problems; tokens counted at each budget; "
        "truncated = percent of samples not finished within the budget."
    ]
    for task, task_metrics in metrics.groupby("task", sort=True):
        task_timeouts = _task_timeouts(timeouts, task)
        section = f"## {task}\n\n"
        if task_metrics["mode"].nunique() > 1:
            section += f"Budget modes side by side:\n\n{_modes_table(task_metrics)}\n\nAll metrics:\n\n"
        sections.append(section + _task_table(task_metrics, task_timeouts))
    return "\n\n".join(sections) + "\n"


def _task_timeouts(timeouts: pd.DataFrame | None, task: str) -> dict[tuple[str, int], int]:
    """Timed-out verifications per (mode, budget) for `task`; empty when it has none."""
    if timeouts is None or timeouts.empty:
        return {}
    rows = timeouts[timeouts["task"] == task]
    counts = {(str(r.mode), int(r.budget)): int(r.timeouts) for r in rows.itertuples(index=False)}
    return counts if any(counts.values()) else {}


def _task_table(metrics: pd.DataFrame, timeouts: dict[tuple[str, int], int]) -> str:
    ks = sorted({int(k) for k in metrics["k"].dropna()})
    header = ["budget", "mode"]
    header += [f"{metric}@{k}" for metric in ACCURACY_METRICS for k in ks]
    header += ["tokens mean", "tokens median", "truncated %"]
    if timeouts:
        header.append("timeouts")

    lookup = {
        (str(r.mode), int(r.budget), str(r.metric), None if pd.isna(r.k) else int(r.k)): (r.value, r.stderr)
        for r in metrics.itertuples(index=False)
    }
    cells = sorted({(int(b), str(m)) for b, m in zip(metrics["budget"], metrics["mode"])})
    lines = [_markdown_row(header), _markdown_row(["---:", "---"] + ["---:"] * (len(header) - 2))]
    for budget, mode in cells:
        row = [format_budget(budget), mode]
        for metric in ACCURACY_METRICS:
            for k in ks:
                row.append(_percent_with_stderr(*lookup.get((mode, budget, metric, k), (math.nan, math.nan))))
        row.append(_tokens(lookup.get((mode, budget, "length_mean", None), (math.nan,))[0]))
        row.append(_tokens(lookup.get((mode, budget, "length_median", None), (math.nan,))[0]))
        row.append(_percent(lookup.get((mode, budget, "truncation_rate", None), (math.nan,))[0]))
        if timeouts:
            row.append(str(timeouts.get((mode, budget), 0)))
        lines.append(_markdown_row(row))
    return "\n".join(lines)


def _modes_table(metrics: pd.DataFrame) -> str:
    """One row per budget, the modes side by side: mean@k and pass@k at the largest k, tokens, truncation."""
    k = max(int(k) for k in metrics["k"].dropna())
    modes = sorted(set(metrics["mode"]), key=lambda mode: (MODE_ORDER.index(mode) if mode in MODE_ORDER else 99, mode))
    columns = [("mean", k, f"mean@{k}"), ("pass", k, f"pass@{k}"), ("length_mean", None, "tokens"),
               ("truncation_rate", None, "truncated %")]
    lookup = {(str(r.mode), int(r.budget), str(r.metric), None if pd.isna(r.k) else int(r.k)): r.value
              for r in metrics.itertuples(index=False)}
    header = ["budget"] + [f"{mode} {label}" for _, _, label in columns for mode in modes]
    lines = [_markdown_row(header), _markdown_row(["---:"] * len(header))]
    for budget in sorted({int(b) for b in metrics["budget"]}):
        row = [format_budget(budget)]
        for metric, metric_k, _ in columns:
            for mode in modes:
                value = lookup.get((mode, budget, metric, metric_k), math.nan)
                row.append(_tokens(value) if metric == "length_mean" else _percent(value))
        lines.append(_markdown_row(row))
    return "\n".join(lines)


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _percent_with_stderr(value: float, stderr: float) -> str:
    if pd.isna(value):
        return _EMPTY
    if pd.isna(stderr):
        return _percent(value)
    return f"{100 * value:.1f} ± {100 * stderr:.1f}"


def _percent(value: float) -> str:
    return _EMPTY if pd.isna(value) else f"{100 * value:.1f}"


def _tokens(value: float) -> str:
    return _EMPTY if pd.isna(value) else f"{value:.0f}"


def report_run(run_dir, ks: Sequence[int] | None, fmt: str) -> str:
    """The printed report of a run directory: its scores, at `ks` (default: 1 and n), in `fmt`."""
    from budgeteval.metrics import compute_metrics, count_timeouts, report_ks, samples_per_problem
    from budgeteval.run_dir import read_scores

    scores = read_scores(run_dir)
    ks = report_ks(samples_per_problem(scores)) if ks is None else list(ks)
    metrics = compute_metrics(scores, ks)
    return format_report(metrics, fmt, ks=ks, timeouts=count_timeouts(scores))
