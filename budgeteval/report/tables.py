"""Render a metrics table for people: one markdown table per task, or the long table as CSV/JSON.

Takes the output of `budgeteval.scoring.metrics.compute_metrics` (or `read_metrics`) and, optionally,
`count_timeouts`, cells written with `budgeteval.report.cells`. It computes nothing new and reads no
files: comparisons between runs and plots live elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.report.cells import EMPTY, UNKNOWN, markdown_row, percent, percent_with_stderr, tokens
from budgeteval.scoring.metrics import (
    ACCURACY_METRICS,
    TOKEN_SPLIT_METRICS,
    metrics_to_csv,
    metrics_to_json,
    normalise_metrics,
)

REPORT_FORMATS = ("markdown", "csv", "json")
"""Formats `format_report` can write."""

MODE_ORDER = ("cutoff", "forced", "engine", "conditioned")
"""Order of budget modes in tables: engine beside forced (the engine's thinking budget beside its replay)."""

POLICY_WORDS = {
    "strict": "a response cut by its budget counts only with a boxed or stated answer",
    "lenient": "an answer read from the text of a cut response also counts",
}
"""How the report explains each answer policy (`budgeteval.scoring.answers.POLICIES`)."""


def format_report(
    metrics: pd.DataFrame,
    fmt: str = "markdown",
    ks: Sequence[int] | None = None,
    timeouts: pd.DataFrame | None = None,
    fallback: pd.DataFrame | None = None,
    answer_policy: str | None = None,
    order: Sequence[str] | None = None,
    thinking: bool = False,
) -> str:
    """Return the report text in `fmt` (markdown, csv or json).

    markdown: one table per task; a row per budget x mode; columns mean@k, pass@k and maj@k for
    each k in `ks` (all k in `metrics` when None) as percentages with one decimal and ± the
    standard error over problems, then mean and median tokens, truncation rate (percent), and
    timed-out verifications when the task has any (`timeouts` from `count_timeouts`), and
    "answers from fallback %" when the task's verdicts record answer sources (`fallback` from
    `fallback_shares`). A truncation rate that is unknown prints as "n/a". `answer_policy` (the
    run's, from its manifest) is named in the opening line. With `thinking` (the run has an
    end-of-thinking marker), three more columns: mean thinking and answer tokens and the percent of
    samples still thinking at the budget, "n/a" where the scores predate the split (re-score).
    csv/json: the long metrics table as written to `metrics.csv`/`metrics.json`, restricted to
    `ks` for the k-metrics; `timeouts`, `fallback` and `answer_policy` are not included.
    `order`: the markdown sections' task labels in the order to print them (default: sorted).
    """
    if fmt not in REPORT_FORMATS:
        raise UserError(f"Unknown report format {fmt!r}: choose one of {', '.join(REPORT_FORMATS)}.")
    metrics = _select_ks(normalise_metrics(metrics), ks)
    if fmt == "csv":
        return metrics_to_csv(metrics)
    if fmt == "json":
        return metrics_to_json(metrics)
    return _format_markdown(metrics, timeouts, fallback, answer_policy, order, thinking)


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


def _format_markdown(metrics: pd.DataFrame, timeouts: pd.DataFrame | None, fallback: pd.DataFrame | None = None,
                     answer_policy: str | None = None, order: Sequence[str] | None = None,
                     thinking: bool = False) -> str:
    opening = ("Accuracies in percent, ± standard error over problems; tokens counted at each budget; "
               "truncated = percent of samples not finished within the budget.")
    if answer_policy is not None:
        opening += f" Answer policy: {answer_policy} ({POLICY_WORDS.get(answer_policy, answer_policy)})."
    if fallback is not None:
        opening += (" Answers from fallback = percent of correct samples whose answer was read from the text"
                    " rather than a box or a final-answer statement.")
    truncation = metrics[metrics["metric"] == "truncation_rate"]
    if truncation["value"].isna().any():
        opening += (" Truncated n/a: unknown, the imported file gave neither finish reasons nor --max-tokens, so a"
                    " response that fits the budget may have been cut when it was generated; the answer policy"
                    " counts such a response as finished.")
    if thinking:
        opening += (" Thinking / answer = mean tokens through / after the end-of-thinking marker (they add up to"
                    " the tokens mean); cut thinking = percent of samples still thinking at the budget.")
        if not metrics["metric"].isin(TOKEN_SPLIT_METRICS).any():
            opening += " Thinking n/a: scored before the split was recorded; re-run `budgeteval score` to fill it."
    if (metrics["metric"] == "cap_exceeded").any():
        opening += (" Cap exceeded = engine-mode responses whose thinking ran past the budget plus the forced end"
                    " string (0 expected; more means the engine ignored its thinking budget).")
    sections = [opening]
    for task in (order if order is not None else sorted(set(metrics["task"]))):
        task_metrics = metrics[metrics["task"] == task]
        task_timeouts = _task_timeouts(timeouts, task)
        section = f"## {task}\n\n"
        if task_metrics["mode"].nunique() > 1:
            section += f"Budget modes side by side:\n\n{_modes_table(task_metrics)}\n\nAll metrics:\n\n"
        sections.append(section + _task_table(task_metrics, task_timeouts, _task_fallback(fallback, task), thinking))
    return "\n\n".join(sections) + "\n"


def _task_timeouts(timeouts: pd.DataFrame | None, task: str) -> dict[tuple[str, int], int]:
    """Timed-out verifications per (mode, budget) for `task`; empty when it has none."""
    if timeouts is None or timeouts.empty:
        return {}
    rows = timeouts[timeouts["task"] == task]
    counts = {(str(r.mode), int(r.budget)): int(r.timeouts) for r in rows.itertuples(index=False)}
    return counts if any(counts.values()) else {}


def _task_fallback(fallback: pd.DataFrame | None, task: str) -> dict[tuple[str, int], float]:
    """Share of correct verdicts from `fallback` per (mode, budget) for `task`; empty without sources."""
    if fallback is None or fallback.empty:
        return {}
    rows = fallback[fallback["task"] == task]
    return {(str(r.mode), int(r.budget)): float(r.fallback_share) for r in rows.itertuples(index=False)}


def _task_table(metrics: pd.DataFrame, timeouts: dict[tuple[str, int], int],
                fallback: dict[tuple[str, int], float] | None = None, thinking: bool = False) -> str:
    ks = sorted({int(k) for k in metrics["k"].dropna()})
    header = ["budget", "mode"]
    header += [f"{metric}@{k}" for metric in ACCURACY_METRICS for k in ks]
    header += ["tokens mean", "tokens median", "truncated %"]
    if thinking:
        header += ["thinking", "answer", "cut thinking %"]
    if fallback:
        header.append("answers from fallback %")
    if timeouts:
        header.append("timeouts")
    capped = bool((metrics["metric"] == "cap_exceeded").any())
    if capped:
        header.append("cap exceeded")

    lookup = {
        (str(r.mode), int(r.budget), str(r.metric), None if pd.isna(r.k) else int(r.k)): (r.value, r.stderr)
        for r in metrics.itertuples(index=False)
    }
    cells = sorted({(int(b), str(m)) for b, m in zip(metrics["budget"], metrics["mode"])},
                   key=lambda cell: (cell[0], _mode_rank(cell[1])))
    lines = [markdown_row(header), markdown_row(["---:", "---"] + ["---:"] * (len(header) - 2))]
    for budget, mode in cells:
        row = [format_budget(budget), mode]
        for metric in ACCURACY_METRICS:
            for k in ks:
                row.append(percent_with_stderr(*lookup.get((mode, budget, metric, k), (math.nan, math.nan))))
        row.append(tokens(lookup.get((mode, budget, "length_mean", None), (math.nan,))[0]))
        row.append(tokens(lookup.get((mode, budget, "length_median", None), (math.nan,))[0]))
        row.append(percent(lookup.get((mode, budget, "truncation_rate", None), (math.nan,))[0], UNKNOWN))
        if thinking:
            row.append(_split_cell(tokens, lookup.get((mode, budget, "thinking_mean", None))))
            row.append(_split_cell(tokens, lookup.get((mode, budget, "answer_mean", None))))
            row.append(_split_cell(percent, lookup.get((mode, budget, "cut_thinking_rate", None))))
        if fallback:
            row.append(percent(fallback.get((mode, budget), math.nan)))
        if timeouts:
            row.append(str(timeouts.get((mode, budget), 0)))
        if capped:
            count = lookup.get((mode, budget, "cap_exceeded", None), (math.nan,))[0]
            row.append(EMPTY if pd.isna(count) else str(int(count)))
        lines.append(markdown_row(row))
    return "\n".join(lines)


def _split_cell(write, found) -> str:
    """A cell of the token split: n/a when the cell has no split (scored before it) or it is unknown."""
    return UNKNOWN if found is None or pd.isna(found[0]) else write(found[0])
def _mode_rank(mode: str) -> tuple:
    return (MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER), mode)


def _modes_table(metrics: pd.DataFrame) -> str:
    """One row per budget, the modes side by side: mean@k and pass@k at the largest k, tokens, truncation."""
    k = max(int(k) for k in metrics["k"].dropna())
    modes = sorted(set(metrics["mode"]), key=_mode_rank)
    columns = [("mean", k, f"mean@{k}"), ("pass", k, f"pass@{k}"), ("length_mean", None, "tokens"),
               ("truncation_rate", None, "truncated %")]
    lookup = {(str(r.mode), int(r.budget), str(r.metric), None if pd.isna(r.k) else int(r.k)): r.value
              for r in metrics.itertuples(index=False)}
    header = ["budget"] + [f"{mode} {label}" for _, _, label in columns for mode in modes]
    lines = [markdown_row(header), markdown_row(["---:"] * len(header))]
    for budget in sorted({int(b) for b in metrics["budget"]}):
        row = [format_budget(budget)]
        for metric, metric_k, _ in columns:
            for mode in modes:
                value = lookup.get((mode, budget, metric, metric_k), math.nan)
                row.append(tokens(value) if metric == "length_mean"
                           else percent(value, UNKNOWN if metric == "truncation_rate" else EMPTY))
        lines.append(markdown_row(row))
    return "\n".join(lines)


def report_run(run_dir, ks: Sequence[int] | None, fmt: str) -> str:
    """The printed report of a run directory: its scores, at `ks` (default: 1 and n), in `fmt`."""
    from budgeteval.report.runs import scored_think_end
    from budgeteval.rundir.manifest import read_manifest
    from budgeteval.rundir.scores import read_scores
    from budgeteval.scoring.metrics import (
        compute_metrics,
        count_timeouts,
        fallback_shares,
        report_ks,
        samples_per_problem,
    )

    scores = read_scores(run_dir)
    ks = report_ks(samples_per_problem(scores)) if ks is None else list(ks)
    metrics = compute_metrics(scores, ks)
    manifest = read_manifest(run_dir)
    scoring = manifest.scoring
    has_sources = bool(scores["answer_source"].notna().any())
    return format_report(metrics, fmt, ks=ks, timeouts=count_timeouts(scores),
                         fallback=fallback_shares(scores) if has_sources else None,
                         answer_policy=scoring.answer_policy if scoring is not None else None,
                         thinking=scored_think_end(manifest) is not None)
