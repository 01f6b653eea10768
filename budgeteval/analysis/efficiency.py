"""Efficiency analysis of finished runs: which problems a budget solves, where tokens go, what an early exit saves.

Everything here is computed from a run directory's files (`scores.parquet`, `problems/`,
`generations/`, `continuations/`, `tokenizer/`), never from a model:

- `problem_profile(run)`: per task x mode x problem x budget, the pass rate, whether the problem is
  solved (at least half its samples correct), the smallest budget from which it stays solved and
  whether it is lost (solved at a smaller budget, not at the largest);
- `gains_and_losses(runs)`: per budget, the problems a run solves that the baseline does not, and
  the reverse (counts and ids);
- `breakdown(runs)`: accuracy, mean length and truncation per bucket x budget x run with deltas vs
  the baseline, for difficulty buckets of the *baseline's* pass rate at its largest budget (the
  seed talk's easy > 1/2, hard <= 1/2) and for every problem group a task declares (extra columns
  of `problems/<task>.parquet`, e.g. MATH-500 `level`);
- `first_correct_positions(run)`: for math tasks, the token position of the first correct
  intermediate answer (every `\\boxed{}` and final-answer statement, in order, found by the
  scorer's own rules in `budgeteval.scoring.answers` and judged by the task's scorer), token-exact
  from the stored ids; `trace_summary` gives the tokens before and
  after it and the outcome efficiency of Chen et al. 2024;
- `early_exit(run)`: Dynasor-style "stop at the first probe where the last m forced answers agree",
  simulated from the forced-mode rows of a dense budget ladder.

Text tables are `budgeteval.analysis.tables`; figures are `budgeteval.plots.analysis`. This module
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgeteval.errors import UserError
from budgeteval.report.profile import PROBLEM_KEYS
from budgeteval.rundir.problems import natural_key, read_problem_groups
from budgeteval.scoring.answers import explicit_answers

DEFAULT_BUCKET_EDGES = (0.0, 0.5, 1.0)
"""Difficulty buckets of the baseline's pass rate: hard = [0, 1/2], easy = (1/2, 1] (the seed talk's split)."""

AGREEMENT_WINDOWS = (2, 3, 4)
"""m of the early-exit rule "stop at the first probe where the last m forced answers agree"."""

TRACE_SCORERS = ("math",)
"""Scorers whose intermediate answers `first_correct_positions` can judge (boxed / stated math answers)."""


# --- the only places that read raw manifest keys and problem files ---------------------------


def task_scorer(run, task: str) -> str:
    """The scorer `run`'s manifest names for `task` ("" when the task is not in it)."""
    entry = run.manifest.tasks.get(task)
    return entry.scorer if entry else ""


def problem_groups(run) -> pd.DataFrame:
    """Declared problem groups of `run`, long: task, problem_id, group (the column), value (as text).

    A group is any column of `problems/<task>.parquet` beyond problem_id, question and reference
    (tasks declare them, e.g. MATH-500's `level`); empty when no task declares one. A problem without
    a value has `budgeteval.rundir.problems.MISSING_GROUP_VALUE`; tasks without a problems file are skipped.
    """
    return read_problem_groups(run.path, run.tasks, missing_ok=True)


# --- 1. per-problem budget profile --------------------------------------------------------------


def problem_profile(run) -> pd.DataFrame:
    """One row per task x mode x problem x budget of `run` (a `budgeteval.report.runs.Run`).

    Columns: num_samples, num_correct, pass_rate (= num_correct / num_samples), solved
    (pass_rate >= `SOLVED_FRACTION`), stays_solved (solved at this budget and at every larger one),
    and per problem (repeated on its rows): solved_from (the smallest budget from which it stays
    solved; NA when it is not solved at the largest budget) and lost (solved at some smaller budget
    but not at the largest).
    """
    return run.profile


def profile_summary(profile: pd.DataFrame) -> pd.DataFrame:
    """One row per task x mode x problem: the pass rate at each budget (a column per budget), solved_from, lost."""
    wide = profile.pivot_table(index=PROBLEM_KEYS, columns="budget", values="pass_rate", aggfunc="first")
    wide.columns = [int(b) for b in wide.columns]
    per_problem = profile.groupby(PROBLEM_KEYS)[["solved_from", "lost"]].first()
    return wide.join(per_problem).reset_index()


def gains_and_losses(runs: Sequence, baseline: str | None = None) -> pd.DataFrame:
    """Per task x mode x budget x run (not the baseline): problems solved by the run and not the baseline.

    Columns: gained / lost (counts), gained_ids / lost_ids (comma-separated problem ids, sorted),
    net = gained - lost. Only problems, budgets and modes both runs have are compared.
    """
    base, others = split_baseline(runs, baseline)
    keys = PROBLEM_KEYS + ["budget"]
    base_solved = problem_profile(base)[keys + ["solved"]]
    rows = []
    for run in others:
        joined = problem_profile(run)[keys + ["solved"]].merge(base_solved, on=keys, suffixes=("", "_base"))
        for (task, mode, budget), cell in joined.groupby(["task", "mode", "budget"], sort=True):
            gained = sorted(cell.loc[cell["solved"] & ~cell["solved_base"], "problem_id"], key=natural_key)
            lost = sorted(cell.loc[~cell["solved"] & cell["solved_base"], "problem_id"], key=natural_key)
            rows.append({"task": task, "mode": mode, "budget": int(budget), "run": run.label, "baseline": base.label,
                         "gained": len(gained), "lost": len(lost), "net": len(gained) - len(lost),
                         "gained_ids": ",".join(gained), "lost_ids": ",".join(lost)})
    columns = ["task", "mode", "budget", "run", "baseline", "gained", "lost", "net", "gained_ids", "lost_ids"]
    return pd.DataFrame(rows, columns=columns)


def split_baseline(runs: Sequence, baseline: str | None):
    """(the baseline run, the other runs): `baseline` names it by label, else the first run is it."""
    from budgeteval.report.compare import baseline_first, check_unique_labels

    runs = list(runs)
    if not runs:
        raise UserError("No runs to analyse: pass at least one run directory.")
    check_unique_labels(runs)
    ordered = baseline_first(runs, baseline, "analysed")
    return ordered[0], ordered[1:]


# --- 2. difficulty and group breakdown ----------------------------------------------------------


def parse_bucket_edges(text: str) -> tuple[float, ...]:
    """`0,0.25,0.5,0.75,1` -> edges of pass-rate buckets (increasing, from 0 to 1)."""
    try:
        edges = tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        edges = ()
    if (len(edges) < 2 or edges[0] != 0.0 or edges[-1] != 1.0
            or any(b <= a for a, b in zip(edges, edges[1:]))):
        raise UserError(f"--buckets {text!r} must be increasing pass rates from 0 to 1, e.g. 0,0.5,1 or 0,0.25,0.5,0.75,1.")
    return edges


def bucket_labels(edges: Sequence[float]) -> list[str]:
    """Names of the buckets: `[0, 0.25]`, `(0.25, 0.5]`, ...; the default split is `hard [0, 0.5]`, `easy (0.5, 1]`."""
    labels = [f"{'[' if i == 0 else '('}{_edge(low)}, {_edge(high)}]" for i, (low, high) in enumerate(zip(edges, edges[1:]))]
    if tuple(edges) == DEFAULT_BUCKET_EDGES:
        labels = [f"hard {labels[0]}", f"easy {labels[1]}"]
    return labels


def _edge(value: float) -> str:
    return f"{value:g}"


def bucketing_mode(run) -> str:
    """The mode whose pass rates define the buckets: `cutoff` when the run has it, else its first mode."""
    modes = sorted(run.scores["mode"].unique())
    return "cutoff" if "cutoff" in modes else modes[0]


def difficulty_buckets(baseline_run, edges: Sequence[float] = DEFAULT_BUCKET_EDGES) -> pd.DataFrame:
    """task, problem_id, pass_rate, bucket: each problem's bucket by the baseline's pass rate at its largest budget.

    The pass rate is the fraction of the baseline's samples correct at its largest budget (in
    `bucketing_mode`); bucket i holds rates in (edges[i], edges[i+1]] (the first also holds 0).
    Bucketing uses only the baseline, so every run is compared on the same problems.
    """
    profile = problem_profile(baseline_run)
    profile = profile[profile["mode"] == bucketing_mode(baseline_run)]
    largest = profile.groupby("task")["budget"].transform("max")
    rates = profile[profile["budget"] == largest][["task", "problem_id", "pass_rate"]].reset_index(drop=True)
    labels = bucket_labels(edges)
    index = np.searchsorted(np.asarray(edges[1:-1]), rates["pass_rate"].to_numpy(), side="left")
    rates["bucket"] = pd.Categorical([labels[i] for i in index], categories=labels, ordered=True)
    return rates


def breakdown(runs: Sequence, baseline: str | None = None, edges: Sequence[float] = DEFAULT_BUCKET_EDGES,
              groups: bool = True) -> pd.DataFrame:
    """Accuracy, mean length and truncation per grouping x bucket x task x mode x budget x run, with Δ vs the baseline.

    `grouping` is `difficulty` (buckets of `difficulty_buckets`, from the baseline only) or the name
    of a declared problem group (`problem_groups` of the baseline). Per cell: num_problems,
    accuracy (mean over the bucket's problems of the fraction of samples correct), length (mean
    `num_tokens` over its samples), truncation (fraction of its samples not finished within the
    budget); accuracy_delta and truncation_delta (points as fractions) and length_change
    (relative) vs the baseline in the same cell (NaN on the baseline's rows).
    """
    base, _ = split_baseline(runs, baseline)
    ordered = [base] + [run for run in runs if run.label != base.label]
    assignments = [difficulty_buckets(base, edges).assign(grouping="difficulty")[["task", "problem_id", "grouping",
                                                                                   "bucket"]]]
    order = {("difficulty", label): i for i, label in enumerate(bucket_labels(edges))}
    if groups:
        declared = problem_groups(base)
        if not declared.empty:
            assignments.append(declared.rename(columns={"group": "grouping", "value": "bucket"}))
            for (grouping, value) in declared[["group", "value"]].drop_duplicates().itertuples(index=False):
                order.setdefault((grouping, value), len(order))
    assignment = pd.concat([a.assign(bucket=a["bucket"].astype(str)) for a in assignments], ignore_index=True)
    frames = []
    for run in ordered:
        scores = run.scores.assign(problem_id=run.scores["problem_id"].astype(str))
        joined = scores.merge(assignment, on=["task", "problem_id"], how="inner")
        # An imported sample whose finish is unknown (null) makes its cell's truncation unknown (NaN), as in metrics.
        joined["_truncated"] = (~joined["finished"].fillna(True).astype(bool)).astype(float)
        joined["_unknown"] = joined["finished"].isna()
        keys = ["grouping", "bucket", "task", "mode", "budget"]
        per_problem = joined.groupby(keys + ["problem_id"], sort=False)["correct"].mean().reset_index()
        accuracy = per_problem.groupby(keys)["correct"].agg(num_problems="size", accuracy="mean")
        samples = joined.groupby(keys).agg(length=("num_tokens", "mean"), truncation=("_truncated", "mean"),
                                           _unknown=("_unknown", "any"))
        samples.loc[samples["_unknown"], "truncation"] = float("nan")
        samples = samples.drop(columns="_unknown")
        frames.append(accuracy.join(samples).reset_index().assign(run=run.label))
    table = pd.concat(frames, ignore_index=True)
    keys = ["grouping", "bucket", "task", "mode", "budget"]
    base_cells = table[table["run"] == base.label][keys + ["accuracy", "length", "truncation"]]
    table = table.merge(base_cells, on=keys, how="left", suffixes=("", "_base"))
    own = table["run"] == base.label
    table["baseline"] = own
    table["accuracy_delta"] = (table["accuracy"] - table["accuracy_base"]).where(~own)
    table["truncation_delta"] = (table["truncation"] - table["truncation_base"]).where(~own)
    table["length_change"] = ((table["length"] - table["length_base"]) / table["length_base"]).where(~own)
    run_order = {run.label: i for i, run in enumerate(ordered)}
    table["_order"] = [order.get((g, b), len(order)) for g, b in zip(table["grouping"], table["bucket"])]
    table["_run"] = table["run"].map(run_order)
    table = table.sort_values(["task", "mode", "_order", "budget", "_run"], kind="mergesort")
    columns = ["grouping", "bucket", "task", "mode", "budget", "run", "baseline", "num_problems", "accuracy",
               "accuracy_delta", "length", "length_change", "truncation", "truncation_delta"]
    return table[columns].reset_index(drop=True)


# --- 3. where tokens go inside a trace ----------------------------------------------------------


@dataclass(frozen=True)
class AnswerCandidate:
    """One intermediate answer in a response's text: a `\\boxed{}` or a final-answer statement."""

    kind: str
    """`boxed` or `stated`."""
    start: int
    """Character offset where the candidate starts in the decoded response."""
    end: int
    """Character offset just past the candidate (the answer is complete once this much text exists)."""
    text: str
    """The text handed to the scorer for this candidate alone."""


def answer_candidates(text: str) -> list[AnswerCandidate]:
    """Every box and final-answer statement of `text` that the scorer could read, in order of their end.

    These are `budgeteval.scoring.answers.explicit_answers`, found by the scorer's own rules: each
    complete non-empty `\\boxed{...}`/`\\fbox{...}` on its own, and each final-answer statement
    anywhere in the text ("the (final) answer is X", "Answer: X", "X is the correct answer"), unless
    its answer holds a box (the box is then the candidate). An unclosed box (a response cut
    mid-answer) is no candidate.
    """
    return [AnswerCandidate(found.source, found.start, found.end, found.text(text)) for found in explicit_answers(text)]


def token_end_positions(tokenizer, token_ids: Sequence[int], text: str, char_ends: Sequence[int]) -> list[int]:
    """For each character offset, the fewest leading tokens whose decoded text already holds `text[:end]`.

    Decodes prefixes of the stored ids with the run's tokenizer (as scoring decodes them,
    special tokens skipped) and binary-searches the count, so positions are token-exact even where
    one character spans several tokens or one token several characters.
    """
    ids = [int(token) for token in token_ids]
    cache: dict[int, str] = {}

    def holds(count: int, end: int) -> bool:
        if count not in cache:
            cache[count] = tokenizer.decode(ids[:count], skip_special_tokens=True)
        return cache[count].startswith(text[:end])

    positions = []
    for end in char_ends:
        low, high = 0, len(ids)
        while low < high:
            middle = (low + high) // 2
            if holds(middle, end):
                high = middle
            else:
                low = middle + 1
        positions.append(low)
    return positions


TRACE_COLUMNS = ("task", "problem_id", "sample_idx", "budget", "num_tokens", "correct", "num_candidates",
                 "first_correct_tokens", "first_correct_kind", "tokens_after_first_correct", "efficiency")
"""Columns of `first_correct_positions`: one row per response."""


def first_correct_positions(run, budget: int | None = None, workers: int = 2) -> pd.DataFrame:
    """Per response of each math task: where (in tokens) its first correct intermediate answer ends.

    Responses are the cutoff-mode responses at `budget` (default: the largest budget scored). Their
    text is decoded from the stored ids; every candidate of `answer_candidates` (thinking and
    answer alike) is judged alone by the task's scorer in one batch call, and the first correct
    one's end is mapped to a token count by `token_end_positions`. Columns (`TRACE_COLUMNS`):
    num_tokens (the response's tokens at the budget), correct (the response's verdict in
    scores.parquet), num_candidates, first_correct_tokens (NA when no candidate is correct),
    first_correct_kind, tokens_after_first_correct = num_tokens - first_correct_tokens, and
    efficiency = first_correct_tokens / num_tokens (Chen et al. 2024's T̂/T). A correct response
    with no correct candidate (its answer came from a whole-text fallback) gets T̂ = T. When
    scores.parquet records each verdict's `answer_source` (boxed, stated, fallback, none), it is
    kept as a column.
    """
    from budgeteval.generation.tokenizer import load_tokenizer
    from budgeteval.rundir.layout import tokenizer_dir
    from budgeteval.scoring.scorers.base import ScoreItem
    from budgeteval.tasks.registry import get_scorer

    tasks = [task for task in run.tasks if task_scorer(run, task) in TRACE_SCORERS]
    if not tasks:
        return pd.DataFrame(columns=list(TRACE_COLUMNS))
    tokenizer_path = tokenizer_dir(run.path)
    if not tokenizer_path.is_dir():
        raise UserError(f"{run.path} has no tokenizer/ folder, which token positions need; the run directory is incomplete.")
    tokenizer = load_tokenizer(str(tokenizer_path))
    scores = run.scores
    cutoff = scores[scores["mode"] == "cutoff"]
    if cutoff.empty:
        raise UserError(f"{run.path} has no cutoff-mode scores: first-correct positions read the cutoff responses.")
    budget = int(cutoff["budget"].max()) if budget is None else int(budget)
    generations = run.generations
    references = run.problems.assign(problem_id=lambda f: f["problem_id"].astype(str))
    rows = []
    for task in tasks:
        verdicts = cutoff[(cutoff["task"] == task) & (cutoff["budget"] == budget)]
        if verdicts.empty:
            raise UserError(f"Task {task} of {run.path} is not scored at budget {budget} in cutoff mode.")
        correct_of = {(str(p), int(s)): bool(c) for p, s, c in
                      zip(verdicts["problem_id"], verdicts["sample_idx"], verdicts["correct"])}
        # Where the scorer read each final answer (boxed | stated | fallback | none), when scoring recorded it.
        source_of = (dict(zip(zip(verdicts["problem_id"].astype(str), verdicts["sample_idx"].astype(int)),
                              verdicts["answer_source"])) if "answer_source" in verdicts.columns else None)
        reference_of = dict(zip(*(references[references["task"] == task][c] for c in ("problem_id", "reference"))))
        samples = generations[generations["task"] == task].sort_values(["problem_id", "sample_idx"], kind="mergesort")
        responses, items = [], []
        for sample in samples.itertuples(index=False):
            ids = [int(token) for token in sample.token_ids[:budget]]
            text = tokenizer.decode(ids, skip_special_tokens=True)
            candidates = answer_candidates(text)
            responses.append((str(sample.problem_id), int(sample.sample_idx), ids, text, candidates, len(items)))
            items += [ScoreItem(str(sample.problem_id), reference_of[str(sample.problem_id)], c.text) for c in candidates]
        judged = get_scorer(task_scorer(run, task))(items, workers=workers) if items else []
        for problem_id, sample_idx, ids, text, candidates, offset in responses:
            first = next((c for i, c in enumerate(candidates) if judged[offset + i].correct), None)
            correct = correct_of.get((problem_id, sample_idx))
            if correct is None:
                raise UserError(f"scores.parquet of {run.path} has no cutoff verdict for task {task}, problem "
                                f"{problem_id}, sample {sample_idx} at budget {budget}: re-run `budgeteval score`.")
            num_tokens = len(ids)
            position = token_end_positions(tokenizer, ids, text, [first.end])[0] if first else None
            if position is None and correct:
                position = num_tokens
            rows.append({
                "task": task, "problem_id": problem_id, "sample_idx": sample_idx, "budget": budget,
                "num_tokens": num_tokens, "correct": correct, "num_candidates": len(candidates),
                "first_correct_tokens": position, "first_correct_kind": first.kind if first else None,
                "tokens_after_first_correct": None if position is None else num_tokens - position,
                "efficiency": None if position is None or num_tokens == 0 else position / num_tokens,
                **({} if source_of is None else {"answer_source": source_of.get((problem_id, sample_idx))}),
            })
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in TRACE_COLUMNS + ("answer_source",) if c in frame.columns]] if rows else \
        pd.DataFrame(columns=list(TRACE_COLUMNS))
    for column in ("first_correct_tokens", "tokens_after_first_correct"):
        frame[column] = frame[column].astype("Int64")
    frame["efficiency"] = frame["efficiency"].astype(float)
    return frame


def outcome_efficiency(correct: Sequence[bool], first_correct_tokens: Sequence, num_tokens: Sequence[int]) -> float:
    """Outcome efficiency ξ_O = (1/N) Σ σ_i · T̂_i / T_i over N responses.

    Chen et al. 2024, "Do NOT Think That Much for 2+3=? On the Overthinking of o1-Like LLMs"
    (arXiv:2412.21187), §2: σ_i = 1 when response i is correct, T̂_i = tokens up to its first
    correct answer, T_i = its tokens. 1 means no token is spent after the first correct answer;
    incorrect responses count 0. NaN for no responses.
    """
    correct = np.asarray(correct, dtype=bool)
    if len(correct) == 0:
        return float("nan")
    ratios = np.array([float(f) / float(t) if c and t else 0.0
                       for c, f, t in zip(correct, first_correct_tokens, num_tokens)])
    return float(ratios.mean())


def trace_summary(positions: pd.DataFrame) -> pd.DataFrame:
    """Per task x budget: where the tokens of the responses go, from `first_correct_positions`.

    responses, accuracy (fraction correct), with_correct_answer (fraction with a correct
    intermediate answer anywhere), tokens_to_first_correct and tokens_after_first_correct (means
    over responses with one, correct or not), after_share (tokens after the first correct answer as
    a fraction of all tokens of the responses with one), outcome_efficiency (`outcome_efficiency`,
    over all responses) and correct_efficiency (mean T̂/T over the correct responses:
    outcome_efficiency / accuracy); with answer sources recorded, correct_from_fallback (the
    fraction of correct responses whose answer was read by the whole-text fallback, T̂ = T).
    """
    rows = []
    for (task, budget), frame in positions.groupby(["task", "budget"], sort=True):
        has = frame["first_correct_tokens"].notna()
        found = frame[has]
        correct = frame[frame["correct"]]
        rows.append({
            "task": task, "budget": int(budget), "responses": len(frame), "accuracy": float(frame["correct"].mean()),
            "with_correct_answer": float(has.mean()),
            "tokens_to_first_correct": float(found["first_correct_tokens"].astype(float).mean()) if len(found) else np.nan,
            "tokens_after_first_correct": (float(found["tokens_after_first_correct"].astype(float).mean())
                                           if len(found) else np.nan),
            "after_share": (float(found["tokens_after_first_correct"].sum() / found["num_tokens"].sum())
                            if len(found) and found["num_tokens"].sum() else np.nan),
            "outcome_efficiency": outcome_efficiency(frame["correct"], frame["first_correct_tokens"].fillna(0),
                                                     frame["num_tokens"]),
            "correct_efficiency": float(correct["efficiency"].mean()) if len(correct) else np.nan,
            **({"correct_from_fallback": float((correct["answer_source"] == "fallback").mean()) if len(correct) else np.nan}
               if "answer_source" in frame.columns else {}),
        })
    columns = ["task", "budget", "responses", "accuracy", "with_correct_answer", "tokens_to_first_correct",
               "tokens_after_first_correct", "after_share", "outcome_efficiency", "correct_efficiency"]
    if "answer_source" in positions.columns:
        columns.append("correct_from_fallback")
    return pd.DataFrame(rows, columns=columns)


# --- 4. early exit over a forced-mode probe ladder ----------------------------------------------


EXIT_COLUMNS = ("task", "problem_id", "sample_idx", "window", "stop_budget", "reason", "tokens", "probe_tokens",
                "correct", "full_budget", "full_tokens", "full_correct")
"""Columns of `early_exit`'s per-response frame."""


def early_exit(run, windows: Sequence[int] = AGREEMENT_WINDOWS) -> pd.DataFrame:
    """Simulate "stop at the first probe where the last m forced answers agree" for each m in `windows`.

    The probes are the run's forced-mode budgets B_1 < ... < B_K (a dense ladder such as
    `--budgets 256:8k:256 --modes forced`); at probe B_i the forced answer is the `extracted`
    answer of the forced row in scores.parquet. A response stops at the first probe i >= m whose
    last m answers are equal and not missing (reason `agreed`), at the first probe where it had
    finished on its own (`finished`: no forcing happened), else at the largest budget (`largest`).
    Per response and m: stop_budget, tokens (the stopping row's tokens: thinking up to the probe
    plus its forced answer), probe_tokens (tokens of the forced answers of the earlier probes:
    the forcing string and answer ids of continuations/, the cost of probing), correct (the
    stopping row's verdict) and full_tokens / full_correct (the row at the largest budget: running
    to the end). Dynasor (Fu et al. 2024, arXiv:2412.20993) exits on agreeing probes this way.
    """
    windows = sorted({int(m) for m in windows})
    if not windows or windows[0] < 1:
        raise UserError(f"Early-exit windows {windows} must be positive numbers of agreeing probes (e.g. 2,3,4).")
    forced = run.scores[run.scores["mode"] == "forced"]
    if forced.empty:
        raise UserError(f"{run.path} has no forced-mode scores: early exit probes the forced answers; run with "
                        f"--modes forced over a dense ladder such as --budgets 256:8k:256.")
    probe_cost = _probe_costs(run, forced)
    rows = []
    for (task, problem_id, sample_idx), trace in forced.groupby(["task", "problem_id", "sample_idx"], sort=True):
        trace = trace.sort_values("budget")
        budgets = trace["budget"].astype(int).tolist()
        answers = [None if pd.isna(a) else str(a) for a in trace["extracted"]]
        finished = trace["finished"].fillna(True).astype(bool).tolist()
        correct = trace["correct"].astype(bool).tolist()
        tokens = trace["num_tokens"].astype(int).tolist()
        costs = [0 if done else probe_cost.get((task, str(problem_id), int(sample_idx), b), t - b)
                 for b, t, done in zip(budgets, tokens, finished)]
        for m in windows:
            stop, reason = len(budgets) - 1, "largest"
            for i in range(len(budgets)):
                if finished[i]:
                    stop, reason = i, "finished"
                    break
                window = answers[i - m + 1:i + 1] if i + 1 >= m else []
                if window and window[0] is not None and all(a == window[0] for a in window):
                    stop, reason = i, "agreed"
                    break
            rows.append({"task": task, "problem_id": str(problem_id), "sample_idx": int(sample_idx), "window": m,
                         "stop_budget": budgets[stop], "reason": reason, "tokens": tokens[stop],
                         "probe_tokens": int(sum(costs[:stop])), "correct": correct[stop],
                         "full_budget": budgets[-1], "full_tokens": tokens[-1], "full_correct": correct[-1]})
    return pd.DataFrame(rows, columns=list(EXIT_COLUMNS))


def _probe_costs(run, forced: pd.DataFrame) -> dict:
    """(task, problem, sample, budget) -> forcing + answer tokens of that probe, from continuations/ when stored."""
    from budgeteval.rundir.store import CONTINUATIONS, read_task

    costs = {}
    for task in forced["task"].unique():
        if not (run.path / CONTINUATIONS.folder / task).is_dir():
            continue
        table = read_task(run.path, task, kind=CONTINUATIONS,
                          columns=["problem_id", "sample_idx", "budget", "continued", "force_token_ids", "token_ids"])
        for row in table.to_pylist():
            if row["continued"]:
                costs[(task, str(row["problem_id"]), int(row["sample_idx"]), int(row["budget"]))] = (
                    len(row["force_token_ids"]) + len(row["token_ids"]))
    return costs


def early_exit_summary(exits: pd.DataFrame) -> pd.DataFrame:
    """Per task x m, and a `full` row per task (run to the largest budget): accuracy and tokens.

    accuracy (fraction correct at the stop), tokens (mean tokens of the stopping responses),
    probe_tokens (mean tokens spent on earlier probes), total_tokens = tokens + probe_tokens,
    saving = 1 - total_tokens / full tokens, accuracy_delta vs running to the largest budget,
    stopped_early (fraction stopping by agreement or own finish before the largest budget).
    """
    rows = []
    for task, frame in exits.groupby("task", sort=True):
        first = frame[frame["window"] == frame["window"].min()]
        full_tokens = float(first["full_tokens"].mean())
        full_accuracy = float(first["full_correct"].mean())
        rows.append({"task": task, "policy": "full", "window": pd.NA, "responses": len(first), "accuracy": full_accuracy,
                     "tokens": full_tokens, "probe_tokens": 0.0, "total_tokens": full_tokens, "saving": 0.0,
                     "accuracy_delta": 0.0, "stopped_early": 0.0})
        for m, cell in frame.groupby("window", sort=True):
            total = float((cell["tokens"] + cell["probe_tokens"]).mean())
            rows.append({
                "task": task, "policy": f"agree {m}", "window": int(m), "responses": len(cell),
                "accuracy": float(cell["correct"].mean()), "tokens": float(cell["tokens"].mean()),
                "probe_tokens": float(cell["probe_tokens"].mean()), "total_tokens": total,
                "saving": 1.0 - total / full_tokens if full_tokens else np.nan,
                "accuracy_delta": float(cell["correct"].mean()) - full_accuracy,
                "stopped_early": float((cell["stop_budget"] < cell["full_budget"]).mean()),
            })
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["window"] = frame["window"].astype("Int64")
    return frame


# --- pass@k curves ------------------------------------------------------------------------------


def pass_at_k_curve(run, budgets: Sequence[int] | None = None) -> pd.DataFrame:
    """pass@k for every k from 1 to n, per task x mode x budget (default budgets: the smallest and largest).

    The unbiased estimator of Chen et al. 2021 (`budgeteval.scoring.metrics.pass_at_k`), averaged over problems.
    """
    from budgeteval.scoring.metrics import pass_at_k

    scores = run.scores
    have = sorted(int(b) for b in scores["budget"].unique())
    chosen = sorted({have[0], have[-1]}) if not budgets else sorted({int(b) for b in budgets})
    missing = [b for b in chosen if b not in have]
    if missing:
        raise UserError(f"Budget {missing[0]} is not scored in {run.path} (it has {', '.join(map(str, have))}).")
    counts = (scores[scores["budget"].isin(chosen)].groupby(["task", "mode", "budget", "problem_id"])["correct"]
              .agg(["size", "sum"]).reset_index())
    rows = []
    for (task, mode, budget), cell in counts.groupby(["task", "mode", "budget"], sort=True):
        n = int(cell["size"].min())
        for k in range(1, n + 1):
            values = [pass_at_k(int(size), int(c), k) for size, c in zip(cell["size"], cell["sum"])]
            rows.append({"task": task, "mode": mode, "budget": int(budget), "k": k, "pass": float(np.mean(values)),
                         "run": run.label})
    return pd.DataFrame(rows, columns=["task", "mode", "budget", "k", "pass", "run"])


def accuracy_vs_tokens(runs: Sequence) -> pd.DataFrame:
    """One point per run x task x mode x budget: mean accuracy over all samples and mean tokens, and the Pareto front.

    `pareto` marks points no other point of the same task and mode (any run) beats on both axes:
    at least as accurate with no more tokens, better on one (Kimi k1.5 Fig. 7, LASER's plots).
    """
    frames = []
    for run in runs:
        cells = (run.scores.groupby(["task", "mode", "budget"])
                 .agg(accuracy=("correct", "mean"), tokens=("num_tokens", "mean")).reset_index())
        frames.append(cells.assign(run=run.label))
    points = pd.concat(frames, ignore_index=True)
    points["pareto"] = False
    for _, cell in points.groupby(["task", "mode"]):
        for index, row in cell.iterrows():
            dominated = ((cell["accuracy"] >= row["accuracy"]) & (cell["tokens"] <= row["tokens"])
                         & ((cell["accuracy"] > row["accuracy"]) | (cell["tokens"] < row["tokens"]))).any()
            points.loc[index, "pareto"] = not dominated
    return points
