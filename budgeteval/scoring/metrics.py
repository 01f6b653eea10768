"""Aggregate per-sample scores into accuracy, length and truncation metrics per task x mode x budget.

Input is the scores table (one row per task, mode, budget, problem_id, sample_idx); output is a
long table with one row per task x mode x budget x metric (x k), written as `metrics.csv` and
`metrics.json`. Problems are weighted equally: accuracies are averaged within a problem first,
then over problems, and `stderr` is the standard error over problems. With `bootstrap=B > 0`,
`ci_low`/`ci_high` hold a seeded percentile-bootstrap confidence interval over problems.

This module does not score answers, replay budgets or draw tables: scorers, replay and
`budgeteval.report.tables` do. k is an argument here, never part of a task's name.
"""

from __future__ import annotations

import functools
import json
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError
from budgeteval.rundir.layout import metrics_paths
from budgeteval.rundir.scores import SCORE_COLUMNS, TOKEN_SPLIT_COLUMNS

METRIC_COLUMNS = ("task", "mode", "budget", "metric", "k", "value", "stderr", "ci_low", "ci_high")
"""The columns of a metrics table, in this order (`ci_low`/`ci_high` are empty where no bootstrap ran)."""

CI_COLUMNS = ("ci_low", "ci_high")
"""The confidence-interval columns; a metrics file written before they existed reads with them empty."""

DEFAULT_BOOTSTRAP = 1000
"""Bootstrap resamples `budgeteval score/run/import` draw by default (`--bootstrap`)."""

CI_LEVEL = 0.95
"""Coverage of the bootstrap confidence interval: the 2.5th to 97.5th percentile."""

ACCURACY_METRICS = ("mean", "pass", "maj")
"""Metrics that take a k (number of samples per problem); their values are fractions in [0, 1]."""

OPTIONAL_SCORE_COLUMNS = ("timed_out", "answer_source", "cap_exceeded") + TOKEN_SPLIT_COLUMNS
"""Columns `compute_metrics` reads when present (the thinking/answer split and `cap_exceeded` are
null or absent in older files)."""

REQUIRED_SCORE_COLUMNS = tuple(column for column in SCORE_COLUMNS if column not in OPTIONAL_SCORE_COLUMNS)
"""Columns `compute_metrics` needs in the scores table."""

TOKEN_SPLIT_METRICS = ("thinking_mean", "answer_mean", "cut_thinking_rate")
"""Metrics of where the tokens go, written for the cells whose scores record the split (format 3)."""

_CELL = ["task", "mode", "budget"]
_PROBLEM = _CELL + ["problem_id"]


def samples_per_problem(scores: pd.DataFrame) -> int:
    """n of a scores table: the fewest samples any problem has at any task x mode x budget."""
    return int(scores.groupby(_PROBLEM).size().min())


def default_ks(n: int) -> list[int]:
    """k values written to metrics.csv: powers of two up to n, and n itself."""
    ks = {n}
    k = 1
    while k < n:
        ks.add(k)
        k *= 2
    return sorted(ks)


def report_ks(n: int) -> list[int]:
    """k values a printed report shows by default: 1 and n."""
    return sorted({1, n})


def check_ks(ks: Sequence[int], n: int, flag: str = "--k") -> None:
    """Refuse k values above the samples per problem (never a silent rescale)."""
    if ks and max(ks) > n:
        raise UserError(f"{flag} {max(ks)} exceeds --n {n}: pass k values up to {n} or generate more samples.")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct.

    Unbiased estimator 1 - C(n-c, k) / C(n, k) in its numerically stable product form
    (Chen et al. 2021, "Evaluating Large Language Models Trained on Code", Fig. 3).
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}.")
    if k < 1:
        raise UserError(f"k={k} is not a number of samples: pass k values of at least 1.")
    if k > n:
        raise UserError(
            f"k={k} exceeds the {n} samples per problem; pass k values up to {n} or generate more samples."
        )
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def standard_error(per_problem: Sequence[float]) -> float:
    """Standard error of the mean over problems: std (ddof=1) / sqrt(P); NaN for fewer than two."""
    values = np.asarray(per_problem, dtype=float)
    if len(values) < 2:
        return math.nan
    return float(values.std(ddof=1) / math.sqrt(len(values)))


def compute_metrics(scores: pd.DataFrame, ks: Sequence[int], bootstrap: int = 0, seed: int = 0) -> pd.DataFrame:
    """Return the long metrics table (`METRIC_COLUMNS`) for every task x mode x budget in `scores`.

    Definitions (P problems, each with the same n samples, ordered by `sample_idx`):

    - `mean` @k: per problem, the fraction of its first k samples that are correct; mean over problems.
    - `pass` @k: per problem, `pass_at_k(n, c, k)` over all n samples (c correct); mean over problems.
    - `maj` @k: per problem, the extracted answers of the first k samples vote (a missing answer,
      None/NaN, does not vote); the answer with most votes wins, ties going to the answer whose first
      vote has the smallest `sample_idx`; the problem counts as correct iff the earliest sample with
      the winning answer is correct; a problem without votes is wrong. Answers are grouped by exact
      equality of `extracted`, so the scorer must normalise them. Mean over problems.
    - `length_mean`: mean `num_tokens` over all P*n samples (equal n makes this the mean of
      per-problem means).
    - `length_median`: median `num_tokens` over all P*n samples.
    - `length_correct_mean` / `length_incorrect_mean`: mean `num_tokens` over all correct /
      incorrect samples pooled across problems; NaN when there is no such sample.
    - `truncation_rate`: fraction of all P*n samples with `finished` false; NaN (printed "n/a")
      for a cell where any `finished` is missing (unknown: an import without finish reasons), since
      a response that fits the budget may still have been cut by the limit it was generated with.
    - `thinking_mean` / `answer_mean`: mean `thinking_tokens` / `answer_tokens` over all P*n samples
      (they add up to `length_mean`); `cut_thinking_rate`: fraction of the samples still thinking at
      the budget (`cut_thinking`; NaN for a cell where it is unknown). Written only for cells whose
      scores record the split (scored at format 3 or later): an older scores file has no such rows.
    - `cap_exceeded` (engine mode only): the number of responses (of all P*n) whose thinking ran
      past B + the forced end string, i.e. the engine's thinking budget did not hold
      (`budgeteval.scoring.replay.check_engine_response`); 0 expected. A count, not a rate: one such
      response is a finding. Written only for cells whose `cap_exceeded` is known (engine mode).

    `stderr` is `standard_error` over the per-problem values for mean, pass, maj, length_mean,
    truncation_rate and the three split metrics (NaN for a single problem) and NaN for the median and the correct/incorrect
    lengths, which are not means of per-problem values. `num_tokens` is taken as given: the tokens
    counted at that budget (replay's job).

    `ci_low`/`ci_high`: for the same metrics as `stderr`, when `bootstrap` > 0, the percentile
    bootstrap interval (`CI_LEVEL`) of the mean over problems: `bootstrap` resamples of the P
    problems with replacement, the mean of each, and their 2.5th and 97.5th percentiles (numpy's
    linear interpolation). The resamples depend only on `seed`, the task name and P (see
    `resample_counts`), so every budget, mode, metric and k of a task uses the same resamples,
    adding budgets or tasks never changes an interval, and the same seed gives the same bytes.
    Empty (NaN) for a single problem, for the other metrics and when `bootstrap` is 0.
    """
    if bootstrap < 0:
        raise UserError(f"--bootstrap {bootstrap} must be 0 (no confidence intervals) or a number of resamples.")
    if seed < 0:
        raise UserError(f"--bootstrap-seed {seed} must be a non-negative integer.")
    ks = _check_ks(ks)
    scores = _check_scores(scores)
    _check_samples_per_problem(scores, ks)

    ordered = scores.sort_values(_PROBLEM + ["sample_idx"], kind="mergesort").reset_index(drop=True)
    ordered["_rank"] = ordered.groupby(_PROBLEM, sort=False).cumcount()
    tokens = ordered["num_tokens"].astype(float)
    ordered["_tokens"] = tokens
    ordered["_truncated"] = (~ordered["finished"].fillna(True).astype(bool)).astype(float)
    ordered["_correct_tokens"] = tokens.where(ordered["correct"])
    ordered["_incorrect_tokens"] = tokens.where(~ordered["correct"])
    problems = ordered.groupby(_PROBLEM, sort=True)
    samples_and_correct = problems["correct"].agg(["size", "sum"])
    problem_index = samples_and_correct.index

    parts = []
    summarise = functools.partial(_summarise_problems, bootstrap=bootstrap, seed=seed)
    for k in ks:
        first_k = ordered[ordered["_rank"] < k]
        mean_at_k = first_k.groupby(_PROBLEM, sort=True)["correct"].mean()
        parts.append(summarise(mean_at_k, "mean", k))
        pass_values = [pass_at_k(int(n), int(c), k) for n, c in samples_and_correct.itertuples(index=False)]
        parts.append(summarise(pd.Series(pass_values, index=problem_index), "pass", k))
        parts.append(summarise(_majority_correct(first_k, problem_index), "maj", k))

    parts.append(summarise(problems["_tokens"].mean(), "length_mean"))
    parts.append(summarise(problems["_truncated"].mean(), "truncation_rate"))
    cells = ordered.groupby(_CELL, sort=True)
    parts.append(_pooled(cells["_tokens"].median(), "length_median"))
    parts.append(_pooled(cells["_correct_tokens"].mean(), "length_correct_mean"))
    parts.append(_pooled(cells["_incorrect_tokens"].mean(), "length_incorrect_mean"))
    if "cap_exceeded" in ordered.columns and ordered["cap_exceeded"].notna().any():
        checked = ordered[ordered["cap_exceeded"].notna()]
        exceeded = checked["cap_exceeded"].astype(bool).astype(float)
        parts.append(_pooled(exceeded.groupby([checked[c] for c in _CELL], sort=True).sum(), "cap_exceeded"))

    parts.extend(_token_split_parts(ordered, summarise))

    metrics = pd.concat(parts, ignore_index=True)
    for flag, metric in (("finished", "truncation_rate"), ("cut_thinking", "cut_thinking_rate")):
        if flag not in ordered.columns:
            continue
        unknown = ordered[ordered[flag].isna()].groupby(_CELL).size()
        if len(unknown):
            cells = pd.MultiIndex.from_frame(metrics[_CELL]).isin(unknown.index)
            metrics.loc[cells & (metrics["metric"] == metric).to_numpy(),
                        ["value", "stderr", "ci_low", "ci_high"]] = math.nan
    return normalise_metrics(metrics)


def _token_split_parts(ordered: pd.DataFrame, summarise) -> list[pd.DataFrame]:
    """`TOKEN_SPLIT_METRICS` rows for the cells whose every score row records the split (none for a
    scores table from before it: those cells print n/a, never a made-up zero)."""
    if any(column not in ordered.columns for column in TOKEN_SPLIT_COLUMNS):
        return []
    recorded = ordered["thinking_tokens"].notna() & ordered["answer_tokens"].notna()
    complete = recorded.groupby([ordered[c] for c in _CELL]).transform("all")
    split = ordered[complete.to_numpy()]
    if split.empty:
        return []
    split = split.assign(_thinking=split["thinking_tokens"].astype(float), _answer=split["answer_tokens"].astype(float),
                         _cut=split["cut_thinking"].astype("boolean").astype("Float64").astype(float))
    problems = split.groupby(_PROBLEM, sort=True)
    return [summarise(problems["_thinking"].mean(), "thinking_mean"),
            summarise(problems["_answer"].mean(), "answer_mean"),
            summarise(problems["_cut"].mean(), "cut_thinking_rate")]


def resample_counts(task: str, num_problems: int, bootstrap: int, seed: int) -> np.ndarray:
    """How often each of `num_problems` problems is drawn in each of `bootstrap` resamples.

    A (bootstrap x num_problems) array of counts, each row a multinomial draw of P problems with
    replacement (the same distribution as drawing P indices), from a generator seeded by `seed`
    and a CRC-32 of the task name: deterministic across processes and platforms, and independent
    of the budgets, modes, metrics and other tasks in the table. Rows refer to problems in sorted
    `problem_id` order. The returned array is shared between calls: do not modify it.
    """
    return _resample_counts(str(task), int(num_problems), int(bootstrap), int(seed))


@functools.lru_cache(maxsize=16)
def _resample_counts(task: str, num_problems: int, bootstrap: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng([seed, zlib.crc32(task.encode("utf-8"))])
    counts = generator.multinomial(num_problems, np.full(num_problems, 1.0 / num_problems), size=bootstrap)
    counts = counts.astype(float)
    counts.flags.writeable = False
    return counts


def bootstrap_interval(per_problem: Sequence[float], counts: np.ndarray) -> tuple[float, float]:
    """Percentile interval (`CI_LEVEL`) of the mean of `per_problem` over the resamples in `counts`.

    `counts` comes from `resample_counts`; NaN, NaN for fewer than two problems.
    """
    values = np.asarray(per_problem, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    means = counts @ values / len(values)
    tail = 100 * (1 - CI_LEVEL) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def count_timeouts(scores: pd.DataFrame) -> pd.DataFrame:
    """Return `task, mode, budget, timeouts`: how many verifications timed out (counted as wrong).

    A scores table without a `timed_out` column has no timeouts to count: every cell gets 0.
    """
    missing = [c for c in _CELL if c not in scores.columns]
    if missing:
        raise UserError(f"The scores table lacks the column(s) {', '.join(missing)}; re-run `budgeteval score`.")
    flags = scores["timed_out"].fillna(False).astype(bool) if "timed_out" in scores.columns else pd.Series(
        False, index=scores.index
    )
    counts = flags.groupby([scores[c] for c in _CELL], sort=True).sum().astype("int64")
    return counts.rename("timeouts").reset_index()


def fallback_shares(scores: pd.DataFrame) -> pd.DataFrame:
    """Return `task, mode, budget, fallback_share`: the share of correct verdicts whose answer source
    is `fallback` (how much of an accuracy rests on reading an answer the response never stated).

    NaN for a cell with no correct verdict or without recorded sources (the `code` scorer, a
    scores file written before sources were recorded).
    """
    missing = [c for c in _CELL + ["correct"] if c not in scores.columns]
    if missing:
        raise UserError(f"The scores table lacks the column(s) {', '.join(missing)}; re-run `budgeteval score`.")
    sources = scores["answer_source"] if "answer_source" in scores.columns else pd.Series(pd.NA, index=scores.index)
    correct = scores["correct"].astype(bool) & sources.notna()
    frame = pd.DataFrame({c: scores[c] for c in _CELL})
    frame["_correct"] = correct.astype(float)
    frame["_fallback"] = (correct & (sources == "fallback").fillna(False).astype(bool)).astype(float)
    sums = frame.groupby(_CELL, sort=True)[["_correct", "_fallback"]].sum()
    share = (sums["_fallback"] / sums["_correct"]).where(sums["_correct"] > 0)
    return share.rename("fallback_share").reset_index()


def metrics_to_csv(metrics: pd.DataFrame) -> str:
    """The CSV text of a metrics table (what `metrics.csv` holds): missing k, value, stderr or CI as empty."""
    metrics = normalise_metrics(metrics)
    # repr round-trips every float exactly and never depends on locale or display options.
    return metrics.to_csv(index=False, lineterminator="\n", float_format=lambda x: repr(float(x)))


def metrics_to_json(metrics: pd.DataFrame) -> str:
    """The JSON text of a metrics table (what `metrics.json` holds): a list of records, NaN as null."""
    metrics = normalise_metrics(metrics)
    records = [
        {
            "task": str(row.task),
            "mode": str(row.mode),
            "budget": int(row.budget),
            "metric": str(row.metric),
            "k": None if pd.isna(row.k) else int(row.k),
            "value": _json_float(row.value),
            "stderr": _json_float(row.stderr),
            "ci_low": _json_float(row.ci_low),
            "ci_high": _json_float(row.ci_high),
        }
        for row in metrics.itertuples(index=False)
    ]
    return json.dumps(records, indent=2, allow_nan=False) + "\n"


def write_metrics(metrics: pd.DataFrame, run_dir: str | os.PathLike) -> None:
    """Write `metrics.csv` and `metrics.json` into `run_dir`, each atomically (temp file + rename).

    The same metrics give the same bytes: rows are sorted and floats written with Python's repr.
    """
    csv_path, json_path = metrics_paths(Path(run_dir))
    write_text_atomic(csv_path, metrics_to_csv(metrics))
    write_text_atomic(json_path, metrics_to_json(metrics))


def read_metrics(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Load `metrics.csv` from `run_dir` with the dtypes `compute_metrics` returns (k as Int64)."""
    path, _ = metrics_paths(Path(run_dir))
    if not path.exists():
        raise UserError(f"No metrics at {path}: run `budgeteval score` on this run directory first.")
    try:
        metrics = normalise_metrics(pd.read_csv(path, dtype={"task": str, "mode": str, "metric": str, "k": "Int64"}))
    except (UserError, ValueError, KeyError, TypeError, pd.errors.ParserError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"{path} is not a metrics table ({reason}): re-create it with "
                        f"`budgeteval score {Path(run_dir)}`.") from None
    return metrics


def _check_ks(ks: Sequence[int]) -> list[int]:
    if isinstance(ks, (int, np.integer)):
        ks = [ks]
    ks = sorted({int(k) for k in ks})
    if not ks:
        raise UserError("No k given: pass at least one number of samples, for example k=1.")
    if ks[0] < 1:
        raise UserError(f"k={ks[0]} is not a number of samples: pass k values of at least 1.")
    return ks


def _check_scores(scores: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise UserError(f"The scores table lacks the column(s) {', '.join(missing)}; re-run `budgeteval score`.")
    if scores.empty:
        raise UserError("The scores table is empty: there is nothing to compute metrics from.")
    keys = _PROBLEM + ["sample_idx"]
    for column in keys + ["num_tokens", "correct"]:  # `finished` may be missing: unknown
        if scores[column].isna().any():
            raise UserError(f"The scores table has missing values in column {column!r}; re-run `budgeteval score`.")
    duplicated = scores.duplicated(keys)
    if duplicated.any():
        row = scores[duplicated].iloc[0]
        raise UserError(
            f"Sample {row['sample_idx']} of problem {row['problem_id']!r} in task {row['task']!r} appears twice "
            f"at budget {row['budget']} ({row['mode']}); re-run `budgeteval score` on a clean run directory."
        )
    scores = scores.copy()
    for column in ("finished", "correct"):
        known = scores[column].dropna() if column == "finished" else scores[column]
        if not known.isin([True, False]).all():
            raise UserError(f"Column {column!r} of the scores table must hold true/false values only.")
        scores[column] = scores[column].astype(bool) if len(known) == len(scores) else scores[column].astype("boolean")
    return scores


def _check_samples_per_problem(scores: pd.DataFrame, ks: list[int]) -> None:
    per_problem = scores.groupby(_PROBLEM, sort=True).size()
    for task, counts in per_problem.groupby(level="task", sort=True):
        distinct = sorted(counts.unique())
        if len(distinct) > 1:
            raise UserError(
                f"Problems in task {task!r} have different numbers of samples ({', '.join(map(str, distinct))}); "
                f"every problem needs the same n: finish or re-run generation for this task."
            )
        n = int(distinct[0])
        if ks[-1] > n:
            raise UserError(
                f"k={ks[-1]} exceeds the {n} samples per problem in task {task!r}; "
                f"pass k values up to {n} or generate with --n {ks[-1]}."
            )


def _majority_correct(first_k: pd.DataFrame, problem_index: pd.MultiIndex) -> pd.Series:
    """Per problem, 1.0 if the majority answer among `first_k` is correct, else 0.0 (see compute_metrics)."""
    votes = first_k[first_k["extracted"].notna()]
    if votes.empty:
        return pd.Series(0.0, index=problem_index)
    # `first_k` is sorted by rank within each problem, so "first" is the earliest sample with that answer.
    tally = (
        votes.groupby(_PROBLEM + ["extracted"], sort=False)
        .agg(votes=("_rank", "size"), first_rank=("_rank", "min"), first_correct=("correct", "first"))
        .reset_index()
    )
    tally = tally.sort_values(_PROBLEM + ["votes", "first_rank"], ascending=[True] * 4 + [False, True])
    winners = tally.drop_duplicates(_PROBLEM, keep="first").set_index(_PROBLEM)["first_correct"]
    return winners.astype(float).reindex(problem_index, fill_value=0.0)


def _summarise_problems(per_problem: pd.Series, metric: str, k: int | None = None, bootstrap: int = 0,
                        seed: int = 0) -> pd.DataFrame:
    """Mean, standard error and (with `bootstrap`) CI over problems, one row per task x mode x budget."""
    per_problem = per_problem.astype(float)
    grouped = per_problem.groupby(level=_CELL, sort=True)
    # Same formula as `standard_error`, vectorised: std with ddof=1 is NaN for a single problem.
    stderr = grouped.std(ddof=1) / np.sqrt(grouped.count())
    summary = pd.DataFrame({"value": grouped.mean(), "stderr": stderr})
    intervals = []
    for (task, _mode, _budget), values in grouped:
        if bootstrap:
            # `values` is in sorted problem_id order (the groupby sorts), as `resample_counts` expects.
            intervals.append(bootstrap_interval(values.to_numpy(), resample_counts(task, len(values), bootstrap, seed)))
        else:
            intervals.append((math.nan, math.nan))
    summary["ci_low"] = [low for low, _ in intervals]
    summary["ci_high"] = [high for _, high in intervals]
    summary = summary.reset_index()
    summary["metric"] = metric
    summary["k"] = k
    return summary


def _pooled(per_cell: pd.Series, metric: str) -> pd.DataFrame:
    """One row per task x mode x budget for a statistic with no per-problem standard error."""
    summary = per_cell.astype(float).rename("value").reset_index()
    summary["metric"] = metric
    summary["k"] = None
    summary["stderr"] = math.nan
    summary["ci_low"] = math.nan
    summary["ci_high"] = math.nan
    return summary


def normalise_metrics(metrics: pd.DataFrame) -> pd.DataFrame:
    """Return `metrics` with exactly `METRIC_COLUMNS`, their dtypes (k as Int64) and the sorted row order.

    Equal metrics then compare and serialise equal, whether they came from `compute_metrics` or a file.
    A table without the `CI_COLUMNS` (a file written before they existed) gets them empty.
    """
    missing_ci = [c for c in CI_COLUMNS if c not in metrics.columns]
    if missing_ci:
        metrics = metrics.assign(**{c: math.nan for c in missing_ci})
    missing = [c for c in METRIC_COLUMNS if c not in metrics.columns]
    if missing:
        raise UserError(f"The metrics table lacks the column(s) {', '.join(missing)}; recompute the metrics.")
    metrics = metrics.loc[:, list(METRIC_COLUMNS)].copy()
    metrics["task"] = metrics["task"].astype(str)
    metrics["mode"] = metrics["mode"].astype(str)
    metrics["budget"] = metrics["budget"].astype("int64")
    metrics["metric"] = metrics["metric"].astype(str)
    metrics["k"] = pd.array([None if pd.isna(k) else int(k) for k in metrics["k"]], dtype="Int64")
    metrics["value"] = metrics["value"].astype(float)
    metrics["stderr"] = metrics["stderr"].astype(float)
    for column in CI_COLUMNS:
        metrics[column] = metrics[column].astype(float)
    metrics = metrics.sort_values(["task", "mode", "budget", "metric", "k"], kind="mergesort", na_position="last")
    return metrics.reset_index(drop=True)


def _json_float(value: float) -> float | None:
    return None if pd.isna(value) else float(value)
