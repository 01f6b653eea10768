"""Compare runs against a baseline: accuracy and length deltas, AES, and budget-curve summaries.

Per task x mode x budget: mean@k, pass@k and mean length of every run, with the difference to the
baseline run at the same task, mode and budget (accuracy in points, length as a relative change)
and O1-Pruner's Accuracy-Efficiency Score; beside them each run's own efficiency scores, CoT-Valve's
ACU (given the model's parameter count) and OckBench's OckScore. Per task x mode: the normalised area under the
accuracy vs log2(budget) curve and the smallest budget reaching 95% of the run's best accuracy.
Tables are markdown, LaTeX (booktabs) or CSV, their cells written with `budgeteval.report.cells`.

Inputs are `budgeteval.report.runs.Run` objects (their metrics files); nothing is re-scored. This
module draws no figures (`budgeteval.plots.budget`) and does not print single-run reports
(`budgeteval.report.tables`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.report.cells import (
    comparison_cells,
    curve_cells,
    efficiency_cells,
    escape_latex,
    escape_markdown,
    markdown_row,
)

COMPARE_FORMATS = ("markdown", "latex", "csv")
"""Formats `Comparison.format` writes."""

AES_ALPHA, AES_BETA, AES_GAMMA = 1.0, 3.0, 5.0
"""O1-Pruner's default AES weights: length gain, accuracy gain, accuracy loss (Luo et al. 2025, §5.1)."""

REACH_FRACTION = 0.95
"""`reach_budget` is the smallest budget whose accuracy is at least this fraction of the run's best."""

TABLE_COLUMNS = (
    "task", "mode", "budget", "run", "baseline", "k",
    "mean", "mean_ci_low", "mean_ci_high", "mean_delta",
    "pass", "pass_ci_low", "pass_ci_high", "pass_delta",
    "length", "length_change", "aes",
    "accuracy_per_1k", "length_correct", "length_correct_change", "length_incorrect", "length_incorrect_change",
    "params_b", "acu", "ockscore",
)
"""Columns of `Comparison.table`: accuracies and deltas as fractions, length in tokens, change relative.

Token efficiency: `accuracy_per_1k` = mean@k / (length / 1000), accuracy per 1k mean tokens;
`length_correct` / `length_incorrect` = mean tokens of the correct / incorrect samples (the seed's
"Length↓" of each), with their changes relative to the baseline. `params_b`: the run's parameter
count in billions (`--params`; NaN when not given); `acu` = `accuracy_per_computation_unit` of mean@k,
params_b and length (NaN without params_b); `ockscore` = `ock_score` of mean@k and length."""

SUMMARY_COLUMNS = (
    "task", "mode", "run", "baseline", "k", "budget_min", "budget_max", "num_budgets",
    "auc", "auc_delta", "best_mean", "reach_budget",
)
"""Columns of `Comparison.summary`: one row per task x mode x run."""


def accuracy_efficiency_score(accuracy: float, baseline_accuracy: float, length: float, baseline_length: float,
                              alpha: float = AES_ALPHA, beta: float = AES_BETA, gamma: float = AES_GAMMA) -> float:
    """O1-Pruner's Accuracy-Efficiency Score of a model against a baseline.

    Luo et al. 2025, "O1-Pruner: Length-Harmonizing Fine-Tuning for O1-Like Reasoning Pruning"
    (arXiv:2501.12570), §5.1: with ΔLength = (L_base - L_model) / L_base and
    ΔAcc = (Acc_model - Acc_base) / Acc_base, AES = α·ΔLength + β·|ΔAcc| if ΔAcc ≥ 0, else
    α·ΔLength - γ·|ΔAcc|; defaults α = 1, β = 3, γ = 5 (γ > β: losing accuracy costs more than
    gaining it earns). Both changes are relative to the baseline, so AES is NaN when the
    baseline's accuracy or length is 0 (or any input is NaN).
    """
    values = (accuracy, baseline_accuracy, length, baseline_length)
    if any(pd.isna(v) for v in values) or baseline_accuracy == 0 or baseline_length == 0:
        return math.nan
    delta_length = (baseline_length - length) / baseline_length
    delta_accuracy = (accuracy - baseline_accuracy) / baseline_accuracy
    if delta_accuracy >= 0:
        return float(alpha * delta_length + beta * abs(delta_accuracy))
    return float(alpha * delta_length - gamma * abs(delta_accuracy))


def accuracy_per_computation_unit(accuracy: float, params_billions: float | None, tokens: float) -> float:
    """CoT-Valve's Accuracy per Computation Unit, scaled by 10^2 as the paper prints it.

    Ma et al. 2025, "CoT-Valve: Length-Compressible Chain-of-Thought Tuning" (arXiv:2502.09601),
    §4.1 "Metrics", Eq. 5: ACU = Accuracy / (#Params × #Tokens), with accuracy in percent, #Params
    in billions and #Tokens the mean tokens of the answer; its tables report ACU × 10^2 (Table 1's
    caption): QwQ-32B-Preview on GSM8K, 95.1% at 741.1 tokens, is 0.40. `accuracy` is a fraction
    here. NaN without a parameter count, for zero tokens or parameters, or any input NaN.
    """
    values = (accuracy, params_billions, tokens)
    if any(v is None or pd.isna(v) for v in values) or params_billions <= 0 or tokens <= 0:
        return math.nan
    return float(100 * (100 * accuracy) / (params_billions * tokens))


OCK_TOKEN_WEIGHT, OCK_TOKEN_SCALE = 10.0, 10000.0
"""OckScore's token penalty: 10 points per natural-log unit of (tokens / 10,000 + 1) (OckBench's constants)."""


def ock_score(accuracy: float, tokens: float) -> float:
    """OckBench's OckScore: accuracy in percent minus a logarithmic penalty on the mean tokens.

    Du et al. 2025, "OckBench: Measuring the Efficiency of LLM Reasoning" (arXiv:2511.05722), as its
    code computes it (github.com/OckBench/OckBench, src/core/scoring.py, `ock_score`):
    100·accuracy − 10·ln(tokens / 10,000 + 1), tokens the mean tokens per problem (here: per
    response at the budget). `accuracy` is a fraction here. NaN when an input is NaN.
    """
    if any(v is None or pd.isna(v) for v in (accuracy, tokens)):
        return math.nan
    return float(100 * accuracy - OCK_TOKEN_WEIGHT * math.log(tokens / OCK_TOKEN_SCALE + 1))


def parse_params(text: str) -> float:
    """A parameter count as `--params` writes it, in billions: `1.7B` -> 1.7, `500M` -> 0.5, `70b` -> 70."""
    value = str(text).strip()
    scale = {"b": 1.0, "m": 1e-3, "k": 1e-6}.get(value[-1:].lower())
    try:
        number = float(value[:-1]) if scale else math.nan
    except ValueError:
        number = math.nan
    if not scale or not math.isfinite(number) or number <= 0:
        raise UserError(f"--params {text!r} is not a parameter count: write it with its unit, e.g. 1.7B or 500M.")
    return number * scale


def curve_area(budgets: Sequence[int], accuracies: Sequence[float]) -> float:
    """Area under accuracy vs log2(budget), normalised to [0, 1]: the curve's mean over log2 budgets.

    The trapezoid rule over the points (log2 B_i, accuracy_i), sorted by budget, divided by
    log2(B_max) - log2(B_min). With accuracies in [0, 1] the result is in [0, 1]: 1 means perfect
    accuracy at every budget of the range, and a curve that doubles its budget for every step
    weighs each doubling equally. Only comparable between runs over the same budgets (`compare_runs`
    uses the budgets all runs share). NaN for fewer than two budgets or a missing accuracy.
    """
    points = sorted(zip((int(b) for b in budgets), (float(a) for a in accuracies)))
    if len(points) < 2 or any(math.isnan(a) for _, a in points):
        return math.nan
    x = np.log2([b for b, _ in points])
    y = np.array([a for _, a in points])
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))
    return area / float(x[-1] - x[0])


def reach_budget(budgets: Sequence[int], accuracies: Sequence[float], fraction: float = REACH_FRACTION) -> int | None:
    """The smallest budget whose accuracy is at least `fraction` of the best accuracy over `budgets`.

    None when no accuracy is above zero (there is nothing to reach) or none is known.
    """
    points = sorted((int(b), float(a)) for b, a in zip(budgets, accuracies) if not pd.isna(a))
    if not points:
        return None
    best = max(a for _, a in points)
    if best <= 0:
        return None
    # A tiny tolerance keeps "exactly 95%" from failing on float rounding (0.95 * 0.8 vs 0.76).
    return next(b for b, a in points if a >= fraction * best - 1e-12)


@dataclass(frozen=True)
class Comparison:
    """Runs compared against a baseline: the per-budget table and the per-curve summary."""

    table: pd.DataFrame
    """One row per task x mode x budget x run (`TABLE_COLUMNS`)."""
    summary: pd.DataFrame
    """One row per task x mode x run (`SUMMARY_COLUMNS`)."""
    baseline: str
    """Label of the baseline run."""
    k: int
    """Samples per problem behind mean@k and pass@k."""
    runs: tuple[str, ...]
    """Run labels in display order (the baseline first)."""

    def format(self, fmt: str = "markdown") -> str:
        """The comparison as markdown (a table per task), LaTeX (booktabs tabulars) or CSV (one tidy table)."""
        if fmt not in COMPARE_FORMATS:
            raise UserError(f"Unknown compare format {fmt!r}: choose one of {', '.join(COMPARE_FORMATS)}.")
        if fmt == "csv":
            return self.to_csv()
        return _format_markdown(self) if fmt == "markdown" else _format_latex(self)

    def to_csv(self) -> str:
        """`table` joined with the curve summary of each row's run (repeated on its budget rows), as CSV."""
        summary = self.summary.drop(columns=["baseline", "k"])
        joined = self.table.merge(summary, on=["task", "mode", "run"], how="left", validate="many_to_one")
        return joined.to_csv(index=False, lineterminator="\n", float_format=lambda x: repr(float(x)))


def compare_runs(runs: Sequence, baseline: str | None = None, k: int | None = None,
                 reach: float = REACH_FRACTION, params: dict | float | None = None) -> Comparison:
    """Compare `runs` (`budgeteval.report.runs.Run`) against the one labelled `baseline` (default: the first).

    `k` (default: the largest k every run's metrics have) sets mean@k and pass@k. Deltas and AES
    compare a run with the baseline at the same task, mode and budget (NaN where the baseline
    lacks that cell, and on the baseline's own rows). Curve summaries (`curve_area`,
    `reach_budget` of mean@k) use the budgets that every run has for that task and mode.
    `params`: parameter counts in billions for ACU: one number for every run, or run label -> number
    (the key None: every run not named).
    """
    runs = list(runs)
    if len(runs) < 2:
        raise UserError("compare needs at least two runs: pass the baseline and one or more runs to compare with it.")
    check_unique_labels(runs)
    check_shared_tasks(runs)
    ordered = baseline_first(runs, baseline, "compared")
    baseline = ordered[0].label
    k = common_k(ordered) if k is None else int(k)
    sizes = run_params(ordered, params)
    cells = pd.concat([_run_cells(run, k, sizes.get(run.label)) for run in ordered], ignore_index=True)
    if cells.empty:
        raise UserError("The runs have no mean@k results to compare.")
    table = _with_deltas(cells, baseline).assign(k=k)
    summary = _curve_summaries(cells, baseline, reach).assign(k=k)
    return Comparison(table=table, summary=summary, baseline=baseline, k=k, runs=tuple(r.label for r in ordered))


def common_k(runs: Sequence) -> int:
    """The largest k that every run's metrics file has for mean@k (the default k of compare and plot)."""
    common = None
    for run in runs:
        available = {int(k) for k in run.metrics.loc[run.metrics["metric"] == "mean", "k"].dropna()}
        common = available if common is None else common & available
    if not common:
        raise UserError("The runs' metrics share no k for mean@k: pass --k with a k up to each run's samples per problem.")
    return max(common)


def run_params(runs: Sequence, params: dict | float | None) -> dict:
    """Run label -> parameter count in billions, from `params` (a number for every run, or label or None
    for every run not named -> billions)."""
    params = {None: float(params)} if isinstance(params, (int, float)) else dict(params or {})
    labels = [run.label for run in runs]
    unknown = [label for label in params if label is not None and label not in labels]
    if unknown:
        raise UserError(f"--params names {unknown[0]!r}, none of the runs compared ({', '.join(labels)}): "
                        f"write RUN=SIZE with a run's label, or a bare SIZE for every run.")
    return {label: params.get(label, params.get(None)) for label in labels if params.get(label, params.get(None))}


def _run_cells(run, k: int, params_billions: float | None = None) -> pd.DataFrame:
    """One row per task x mode x budget of `run`: mean@k, pass@k (with intervals) and mean length."""
    metrics = run.metrics_at([k])
    keys = ["task", "mode", "budget"]

    def pick(metric: str, columns: dict[str, str], with_k: bool) -> pd.DataFrame:
        rows = metrics[(metrics["metric"] == metric) & ((metrics["k"] == k).fillna(False) if with_k else metrics["k"].isna())]
        return rows[keys + list(columns)].rename(columns=columns)

    mean = pick("mean", {"value": "mean", "ci_low": "mean_ci_low", "ci_high": "mean_ci_high"}, True)
    passed = pick("pass", {"value": "pass", "ci_low": "pass_ci_low", "ci_high": "pass_ci_high"}, True)
    length = pick("length_mean", {"value": "length"}, False)
    length_correct = pick("length_correct_mean", {"value": "length_correct"}, False)
    length_incorrect = pick("length_incorrect_mean", {"value": "length_incorrect"}, False)
    cells = (mean.merge(passed, on=keys, how="left").merge(length, on=keys, how="left")
             .merge(length_correct, on=keys, how="left").merge(length_incorrect, on=keys, how="left"))
    cells["accuracy_per_1k"] = (cells["mean"] / (cells["length"] / 1000.0)).where(cells["length"] > 0)
    cells["params_b"] = math.nan if params_billions is None else float(params_billions)
    cells["acu"] = [accuracy_per_computation_unit(mean, params_billions, length)
                    for mean, length in zip(cells["mean"], cells["length"])]
    cells["ockscore"] = [ock_score(mean, length) for mean, length in zip(cells["mean"], cells["length"])]
    cells.insert(3, "run", run.label)
    return cells


def _with_deltas(cells: pd.DataFrame, baseline: str) -> pd.DataFrame:
    keys = ["task", "mode", "budget"]
    base = cells[cells["run"] == baseline][keys + ["mean", "pass", "length", "length_correct", "length_incorrect"]]
    table = cells.merge(base, on=keys, how="left", suffixes=("", "_base"))
    is_base = table["run"] == baseline
    table["baseline"] = is_base
    table["mean_delta"] = (table["mean"] - table["mean_base"]).where(~is_base)
    table["pass_delta"] = (table["pass"] - table["pass_base"]).where(~is_base)
    table["length_change"] = ((table["length"] - table["length_base"]) / table["length_base"]).where(~is_base)
    for column in ("length_correct", "length_incorrect"):
        table[f"{column}_change"] = ((table[column] - table[f"{column}_base"]) / table[f"{column}_base"]).where(~is_base)
    table["aes"] = [
        math.nan if own else accuracy_efficiency_score(acc, acc_base, length, length_base)
        for own, acc, acc_base, length, length_base in zip(
            is_base, table["mean"], table["mean_base"], table["length"], table["length_base"])
    ]
    return _ordered(table, list(TABLE_COLUMNS), keys, cells)


def _curve_summaries(cells: pd.DataFrame, baseline: str, reach: float) -> pd.DataFrame:
    rows = []
    for (task, mode), group in cells.groupby(["task", "mode"], sort=True):
        per_run = {label: frame.set_index("budget")["mean"] for label, frame in group.groupby("run", sort=False)}
        shared = sorted(set.intersection(*(set(series.index) for series in per_run.values())))
        for label, series in per_run.items():
            accuracies = [series[b] for b in shared]
            rows.append({
                "task": task, "mode": mode, "run": label, "baseline": label == baseline,
                "budget_min": min(shared) if shared else None, "budget_max": max(shared) if shared else None,
                "num_budgets": len(shared), "auc": curve_area(shared, accuracies),
                "best_mean": max(accuracies) if accuracies else math.nan,
                "reach_budget": reach_budget(shared, accuracies, reach),
            })
    summary = pd.DataFrame(rows)
    base = summary[summary["baseline"]][["task", "mode", "auc"]]
    summary = summary.merge(base, on=["task", "mode"], how="left", suffixes=("", "_base"))
    summary["auc_delta"] = (summary["auc"] - summary["auc_base"]).where(~summary["baseline"])
    for column in ("budget_min", "budget_max", "reach_budget"):
        summary[column] = pd.array([None if pd.isna(v) else int(v) for v in summary[column]], dtype="Int64")
    return _ordered(summary, list(SUMMARY_COLUMNS), ["task", "mode"], cells)


def _ordered(frame: pd.DataFrame, columns: list[str], keys: list[str], cells: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by `keys`, runs in display order (the order of `cells`), exactly `columns`."""
    order = {label: index for index, label in enumerate(dict.fromkeys(cells["run"]))}
    frame = frame.assign(_run_order=frame["run"].map(order))
    frame = frame.sort_values(keys + ["_run_order"], kind="mergesort").reset_index(drop=True)
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    return frame[columns]


# --- text formats ----------------------------------------------------------------------------------


def _budget_range(summary: pd.DataFrame) -> str:
    ranges = {(int(r.budget_min), int(r.budget_max), int(r.num_budgets))
              for r in summary.itertuples(index=False) if not pd.isna(r.budget_min)}
    if len(ranges) != 1:
        return "the budgets all runs share"
    low, high, count = ranges.pop()
    return f"{format_budget(low)}–{format_budget(high)} ({count} budgets)"


def _format_markdown(comparison: Comparison) -> str:
    k = comparison.k
    lines = [
        f"Baseline: {comparison.baseline}. mean@{k} and pass@{k} in percent, (±points) vs the baseline at the same "
        f"budget; length = mean tokens at the budget, (↓/↑ %) vs the baseline; AES = O1-Pruner's "
        f"Accuracy-Efficiency Score of mean@{k} and length vs the baseline (α=1, β=3, γ=5; Luo et al. 2025).",
    ]
    for task, rows in comparison.table.groupby("task", sort=True):
        lines += ["", f"## {task}", "",
                  f"| budget | mode | run | mean@{k} | pass@{k} | length | AES |",
                  "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
        for row in rows.to_dict("records"):
            cells = [format_budget(int(row["budget"])), row["mode"], escape_markdown(row["run"]), *comparison_cells(row)]
            lines.append(markdown_row(cells))
        lines += ["", f"Token efficiency: mean@{k} in percent per 1k mean tokens; length of the correct and of the incorrect "
                      f"samples (mean tokens at the budget, (↓/↑ %) vs the baseline); OckScore = mean@{k} in percent "
                      f"- 10 ln(1 + length/10k) (OckBench, Du et al. 2025); ACU = mean@{k} in percent / (parameters "
                      f"in billions x length), x100 (CoT-Valve, Ma et al. 2025; needs --params).", "",
                  f"| budget | mode | run | mean@{k} (%) per 1k tokens | length correct | length incorrect | OckScore | ACU |",
                  "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for row in rows.to_dict("records"):
            cells = [format_budget(int(row["budget"])), row["mode"], escape_markdown(row["run"]),
                     *efficiency_cells(row)]
            lines.append(markdown_row(cells))
        summary = comparison.summary[comparison.summary["task"] == task]
        lines += ["", f"Budget curve of mean@{k} over {_budget_range(summary)}: AUC = area under accuracy vs "
                      f"log2(budget) normalised to [0, 1] ((±) vs the baseline); reach {int(REACH_FRACTION * 100)}% = "
                      f"smallest budget with at least {int(REACH_FRACTION * 100)}% of the run's best mean@{k}.", "",
                  f"| mode | run | AUC | best mean@{k} | reach {int(REACH_FRACTION * 100)}% |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for row in summary.to_dict("records"):
            lines.append(markdown_row([row["mode"], escape_markdown(row["run"]), *curve_cells(row)]))
    return "\n".join(lines) + "\n"


def _format_latex(comparison: Comparison) -> str:
    k = comparison.k
    blocks = [f"% budgeteval compare: baseline {comparison.baseline}; needs \\usepackage{{booktabs}}.\n"
              f"% Accuracies in percent with (points) vs the baseline; length = mean tokens at the budget;\n"
              f"% AES = O1-Pruner's Accuracy-Efficiency Score (alpha=1, beta=3, gamma=5; Luo et al. 2025)."]
    for task, rows in comparison.table.groupby("task", sort=True):
        several_modes = rows["mode"].nunique() > 1
        head = ["Budget"] + (["Mode"] if several_modes else []) + ["Model", f"Mean@{k}", f"Pass@{k}", "Length", "AES"]
        spec = "r" + ("l" if several_modes else "") + "lrrrr"
        body = _latex_rows(rows, several_modes, comparison_cells)
        blocks.append("\n".join([f"% {escape_latex(task)}", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                                 " & ".join(head) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]))
        efficiency_body = _latex_rows(rows, several_modes, efficiency_cells)
        efficiency_head = (["Budget"] + (["Mode"] if several_modes else [])
                           + ["Model", f"Mean@{k}/1k tok.", "Len. correct", "Len. incorrect", "OckScore", "ACU"])
        blocks.append("\n".join([f"% {escape_latex(task)}: token efficiency (mean@{k} per 1k mean tokens; lengths of "
                                 f"correct and incorrect samples; OckScore, Du et al. 2025; ACU x100, Ma et al. 2025)",
                                 rf"\begin{{tabular}}{{{'r' + ('l' if several_modes else '') + 'lrrrrr'}}}", r"\toprule",
                                 " & ".join(efficiency_head) + r" \\", r"\midrule", *efficiency_body, r"\bottomrule",
                                 r"\end{tabular}"]))
        summary = comparison.summary[comparison.summary["task"] == task]
        summary_head = (["Mode"] if several_modes else []) + ["Model", "AUC", f"Best mean@{k}",
                                                              f"Reach {int(REACH_FRACTION * 100)}\\%"]
        summary_body = [
            " & ".join(([escape_latex(r["mode"])] if several_modes else []) + [escape_latex(r["run"]), *curve_cells(r, True)])
            + r" \\" for r in summary.to_dict("records")
        ]
        blocks.append("\n".join([
            f"% {escape_latex(task)}: budget curve of mean@{k} over {_budget_range(summary)}; AUC normalised to [0, 1]",
            rf"\begin{{tabular}}{{{('l' if several_modes else '') + 'lrrr'}}}", r"\toprule",
            " & ".join(summary_head) + r" \\", r"\midrule", *summary_body, r"\bottomrule", r"\end{tabular}"]))
    return "\n\n".join(blocks) + "\n"


def check_unique_labels(runs: Sequence) -> None:
    """Raise a `UserError` when two runs share a label (tables and legends would mix them)."""
    seen: dict = {}
    for run in runs:
        if run.label in seen:
            raise UserError(
                f"Runs {seen[run.label]} and {run.path} are both labelled {run.label!r}: "
                f"name them apart with RUN=label (e.g. {run.path}=ours)."
            )
        seen[run.label] = run.path


def check_shared_tasks(runs: Sequence) -> list[str]:
    """Refuse runs that share no task; return one sentence per task some of the runs lack (to print).

    `compare` and `plot` put runs side by side task by task: a task only some runs have gets no
    delta, and runs of disjoint tasks would print unrelated tables as if they were a comparison.
    """
    if len(runs) < 2:
        return []
    tasks = {run.label: set(run.tasks) for run in runs}
    shared = set.intersection(*tasks.values())
    if not shared:
        listing = "; ".join(f"{label}: {', '.join(sorted(names)) or 'none'}" for label, names in tasks.items())
        raise UserError(f"The runs share no task, so nothing can be compared ({listing}): pass runs of the same "
                        f"task(s).")
    notes = []
    for task in sorted(set.union(*tasks.values()) - shared):
        having = [label for label, names in tasks.items() if task in names]
        notes.append(f"task {task} is only in {', '.join(having)}: it is shown without a comparison "
                     f"(tasks in every run: {', '.join(sorted(shared))}).")
    return notes


def _latex_rows(rows: pd.DataFrame, several_modes: bool, texts) -> list[str]:
    """LaTeX body rows of one task's table: budget (and mode) written once per group, a rule between
    groups, then the run and `texts(row, True)`."""
    body, previous = [], None
    for row in rows.to_dict("records"):
        group = (int(row["budget"]), row["mode"])
        if previous is not None and group != previous:
            body.append(r"\midrule")
        first = group != previous
        lead = [format_budget(int(row["budget"])) if first else ""]
        if several_modes:
            lead.append(escape_latex(row["mode"]) if first else "")
        body.append(" & ".join(lead + [escape_latex(row["run"]), *texts(row, True)]) + r" \\")
        previous = group
    return body


def baseline_first(runs: Sequence, baseline: str | None, verb: str = "compared") -> list:
    """The runs with the baseline (its label; default: the first run) first, the others in their order."""
    labels = [run.label for run in runs]
    name = labels[0] if baseline is None else str(baseline)
    if name not in labels:
        raise UserError(f"--baseline {name!r} is none of the runs {verb} ({', '.join(labels)}): "
                        f"name one of them by its label or path.")
    return [run for run in runs if run.label == name] + [run for run in runs if run.label != name]
