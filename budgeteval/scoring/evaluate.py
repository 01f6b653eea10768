"""Score a run directory at any set of budgets, from its stored generations alone.

Reads `generations/` (token ids), replays each response at each budget in each budget mode
(cutoff: the first B ids; forced: the first B ids, the forcing string and the stored answer from
`continuations/`; conditioned: the response generated for that budget, from `conditioned/`; engine:
the response the engine generated with its thinking budget at B, from `engine/`, its thinking counted
to check the cap held, `cap_exceeded`), finds
the answer region, calls the task's scorer once for all budgets (so scorers can share work across
budgets and samples), splits each row's counted tokens into thinking and answer (`count_tokens`, on
the ids the row is decoded from), and writes `scores.parquet`, `metrics.csv` and `metrics.json`. Never loads
the model: `budgeteval score RUN --budgets 1k,3k` re-scores a saved run in place.
`score_samples` runs the same replay and scoring on responses held in memory (a trainer's
evaluation generations, `budgeteval.train`), without a run directory.
"""

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.generation.config import MODES
from budgeteval.generation.forcing import forced_response_ids
from budgeteval.generation.tokenizer import load_decoder
from budgeteval.rundir.layout import tokenizer_dir, verdicts_dir
from budgeteval.rundir.lock import lock_run
from budgeteval.rundir.manifest import ScoringSection, read_manifest, write_manifest
from budgeteval.rundir.problems import read_problems
from budgeteval.rundir.scores import SCORE_COLUMNS, read_scores, write_scores
from budgeteval.rundir.store import CONDITIONED, CONTINUATIONS, ENGINE, read_task
from budgeteval.scoring.answers import DEFAULT_POLICY, check_policy
from budgeteval.scoring.metrics import (
    DEFAULT_BOOTSTRAP,
    compute_metrics,
    default_ks,
    samples_per_problem,
    write_metrics,
)
from budgeteval.scoring.replay import (
    UNKNOWN_FINISH,
    TokenCount,
    answer_region,
    check_engine_response,
    count_tokens,
    cut,
    marker_ids,
)
from budgeteval.scoring.scorers.base import ScoreItem
from budgeteval.scoring.scorers.math import DEFAULT_TIMEOUT_S as MATH_TIMEOUT_S
from budgeteval.scoring.verdict_cache import VerdictCache, compact, shared_cache_dir
from budgeteval.tasks.prompts import prompt_opens_thinking, response_is_thinking
from budgeteval.tasks.registry import get_scorer

__all__ = ["evaluate_run", "score_task", "score_samples", "read_scores", "write_scores", "SCORE_COLUMNS"]

DECODE_WINDOW_TOKENS = 1 << 20
"""Token ids decoded at once: responses are decoded, read and handed to the scorer window by
window, so the texts held at any time (and the ids as Python ints for the tokenizer) are bounded by
this, not by the run."""


def _decode_all(tokenizer, id_lists: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(id_lists, skip_special_tokens=True) if id_lists else []


@dataclass(frozen=True)
class ReplayedRow:
    """One response of the scores table before it is decoded and judged."""

    problem_id: str
    """Problem id."""
    sample_idx: int
    """Sample index within the problem."""
    budget: int
    """Token budget B."""
    mode: str
    """Budget mode that produced the response (`cutoff`, `forced`, `conditioned`, `engine`)."""
    num_tokens: int
    """Tokens counted at this budget and mode."""
    finished: bool | None
    """Finished within the budget on its own (in forced mode: without being forced); None: unknown."""
    thinking: bool
    """Whether the answer is read after the end-of-thinking marker."""
    text_key: tuple
    """Key of the token ids to decode (responses that share ids are decoded once)."""
    forced: bool = False
    """Forced mode, answered after the forcing string: the answer policy treats the forced answer as
    finished (the budget asked for it), though `finished` says the sample was cut at B."""
    uncounted: tuple[int, int] = (0, 0)
    """[start, end) of the decoded ids that `num_tokens` does not count: forced mode's forcing string
    (the harness's text, not the model's); (0, 0) for every other row."""
    cap_exceeded: bool | None = None
    """Engine mode: the response thought past B + the forced string (`replay.check_engine_response`);
    None in the other modes."""


@dataclass(frozen=True)
class EngineMarkers:
    """The token ids engine-mode scoring counts thinking with (from the run's `modes` section)."""

    think_start: str
    """The start-of-thinking string the engine counted after."""
    start_ids: tuple[int, ...]
    """Its token ids."""
    end_ids: tuple[int, ...]
    """Token ids of the end-of-thinking marker (the run's `think_end`)."""
    force_ids: tuple[int, ...]
    """Token ids of the string forced at the budget."""


class _Texts:
    """The token ids of each response to decode, by key (responses that share ids decode once).

    Ids stay numpy views of the store's Arrow column (a cut response is the first N ids of its
    sample, no copy); a forced response, which is built from several parts, is built when its
    window is decoded. Nothing is decoded here.
    """

    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.sources: list = []
        """Per key: a numpy array of ids, or a function returning the ids."""
        self.lengths: list[int] = []

    def add(self, key: tuple, ids, length: int | None = None) -> tuple:
        """Register `ids` (an array, or a function returning them, with its `length`) under `key`."""
        if key not in self.index:
            self.index[key] = len(self.sources)
            self.sources.append(ids)
            self.lengths.append(len(ids) if length is None else length)
        return key

    def length(self, key: tuple) -> int:
        return self.lengths[self.index[key]]

    def array(self, key: tuple) -> np.ndarray:
        """The ids of `key` as a numpy array (a view for a stored response)."""
        source = self.sources[self.index[key]]
        return np.asarray(source() if callable(source) else source)

    def ids(self, key: tuple) -> list[int]:
        """The ids of `key` as Python ints (what the tokenizer takes)."""
        source = self.sources[self.index[key]]
        source = source() if callable(source) else source
        return source.tolist() if isinstance(source, np.ndarray) else [int(token) for token in source]


def _base_rows(table: pa.Table) -> list[dict]:
    """Rows of a store table as dicts, with token ids as numpy views of the column (no copy)."""
    columns = {name: table.column(name).to_pylist() for name in table.column_names if name != "token_ids"}
    token_ids = []
    for chunk in table.column("token_ids").chunks:
        offsets = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy(zero_copy_only=False)
        token_ids.extend(values[offsets[row]:offsets[row + 1]] for row in range(len(chunk)))
    return [{**{name: column[row] for name, column in columns.items()}, "token_ids": token_ids[row]}
            for row in range(table.num_rows)]


def _cutoff_rows(samples: list[dict], budgets, think_end, texts: _Texts) -> list[ReplayedRow]:
    rows = []
    for position, sample in enumerate(samples):
        thinking = response_is_thinking(sample["prompt"], think_end)
        ids = sample["token_ids"]
        for budget in budgets:
            num_tokens, finished = cut(len(ids), sample["finish_reason"], budget)
            # A response shorter than several budgets decodes once.
            key = texts.add(("base", position, num_tokens), ids[:num_tokens])
            rows.append(ReplayedRow(sample["problem_id"], sample["sample_idx"], budget, "cutoff", num_tokens,
                                    finished, thinking, key))
    return rows


def _forced_rows(samples: list[dict], continuations: dict, budgets, think_end, texts: _Texts, task: str,
                 run_dir: Path) -> list[ReplayedRow]:
    rows = []
    for position, sample in enumerate(samples):
        thinking = response_is_thinking(sample["prompt"], think_end)
        for budget in budgets:
            num_tokens, finished = cut(len(sample["token_ids"]), sample["finish_reason"], budget)
            continuation = continuations.get((sample["problem_id"], sample["sample_idx"], budget))
            if continuation is None:
                raise UserError(
                    f"Run {run_dir} has no forced answers for task {task} at budget {format_budget(budget)}: "
                    f"re-run `budgeteval run` with --modes forced and this budget, or score other modes with --modes "
                    f"(scoring never calls the model)."
                )
            if finished:
                key = texts.add(("base", position, num_tokens), sample["token_ids"][:num_tokens])
                rows.append(ReplayedRow(sample["problem_id"], sample["sample_idx"], budget, "forced",
                                        num_tokens, True, thinking, key))
                continue
            force_ids, answer_ids = continuation["force_token_ids"], continuation["token_ids"]
            key = texts.add(("forced", position, budget),
                            lambda ids=sample["token_ids"], b=budget, f=force_ids, a=answer_ids:
                            forced_response_ids(ids, b, f, a),
                            length=num_tokens + len(force_ids) + len(answer_ids))
            # Counted: the kept response ids (B, or fewer when the context cut it first) and the answer;
            # the forcing string is decoded but not counted.
            rows.append(ReplayedRow(sample["problem_id"], sample["sample_idx"], budget, "forced",
                                    num_tokens + len(answer_ids), False, thinking, key, forced=True,
                                    uncounted=(num_tokens, num_tokens + len(force_ids))))
    return rows


def _per_budget_samples(samples: list[dict], budgets, mode: str, what: str, task: str, run_dir: Path):
    """(position, sample) of a store that holds one response per budget (conditioned, engine), for
    the budgets scored; a budget without responses is refused in one sentence."""
    missing = sorted(set(budgets) - {sample["budget"] for sample in samples})
    if missing:
        raise UserError(
            f"Run {run_dir} has no {what} for task {task} at budget {format_budget(missing[0])}: re-run "
            f"`budgeteval run` with --modes {mode} and this budget, or score other modes with --modes "
            f"(scoring never calls the model)."
        )
    return [(position, sample) for position, sample in enumerate(samples) if sample["budget"] in budgets]


def _conditioned_rows(samples: list[dict], budgets, think_end, texts: _Texts, task: str,
                      run_dir: Path) -> list[ReplayedRow]:
    rows = []
    for position, sample in _per_budget_samples(samples, budgets, "conditioned", "conditioned generations", task,
                                                run_dir):
        ids = sample["token_ids"]
        key = texts.add(("conditioned", position), ids)
        rows.append(ReplayedRow(sample["problem_id"], sample["sample_idx"], sample["budget"], "conditioned",
                                len(ids), _finished(sample["finish_reason"]), response_is_thinking(sample["prompt"], think_end),
                                key))
    return rows


def _engine_rows(samples: list[dict], budgets, think_end, markers: EngineMarkers, texts: _Texts, task: str,
                 run_dir: Path) -> list[ReplayedRow]:
    """Engine mode: each stored response as it is; `finished` = its thinking ended on its own within B
    (not forced, cap held, and it closed its thinking block or stopped on its own); `cap_exceeded` from
    its thinking tokens counted on the ids."""
    rows = []
    for position, sample in _per_budget_samples(samples, budgets, "engine", "engine-mode generations", task, run_dir):
        ids = sample["token_ids"]
        thinking = response_is_thinking(sample["prompt"], think_end)
        check = check_engine_response(ids, sample["budget"], markers.start_ids, markers.end_ids, markers.force_ids,
                                      prompt_opens_thinking(sample["prompt"], markers.think_start, think_end))
        stopped = _finished(sample["finish_reason"])
        finished = not check.forced and not check.cap_exceeded and (check.thinking_ended or stopped)
        key = texts.add(("engine", position), ids)
        rows.append(ReplayedRow(sample["problem_id"], sample["sample_idx"], sample["budget"], "engine", len(ids),
                                finished, thinking, key, forced=check.forced, cap_exceeded=check.cap_exceeded))
    return rows


def engine_markers(manifest, tokenizer) -> EngineMarkers:
    """The ids engine-mode scoring needs, from a run's manifest (`run_dir.Manifest`) and tokenizer."""
    modes = manifest.modes
    if modes is None or not modes.think_start or not modes.force_string:
        raise UserError("The run's manifest records no engine-mode settings (think_start, force_string): re-run "
                        "`budgeteval run` with --modes engine, or score other modes with --modes.")
    return EngineMarkers(think_start=modes.think_start, start_ids=marker_ids(tokenizer, modes.think_start),
                         end_ids=marker_ids(tokenizer, manifest.think_end),
                         force_ids=marker_ids(tokenizer, modes.force_string))


def _finished(finish_reason: str) -> bool | None:
    return None if finish_reason == UNKNOWN_FINISH else finish_reason == "stop"


def score_task(run_dir: Path, task: str, scorer_name: str, budgets: Sequence[int], tokenizer,
               think_end: str | None, workers: int, progress: bool,
               modes: Sequence[str] = ("cutoff",), answer_policy: str = DEFAULT_POLICY,
               verdict_cache=None, engine: EngineMarkers | None = None) -> pd.DataFrame:
    """Replay and score one task at every budget and mode; returns its rows of the scores table.
    `verdict_cache`: a `budgeteval.scoring.verdict_cache.VerdictCache` the scorer reads and adds to;
    `engine`: the marker ids engine mode needs (`engine_markers`)."""
    problems = read_problems(run_dir, task)
    columns = ["problem_id", "sample_idx", "prompt", "token_ids", "finish_reason", "max_tokens"]
    texts, rows = _Texts(), []
    if "cutoff" in modes or "forced" in modes:
        table = read_task(run_dir, task, columns=columns)
        _check_complete(run_dir, task, set(table.column("problem_id").to_pylist()), problems)
        if table.num_rows:
            generated_with = int(pc_min(table.column("max_tokens")))
            too_large = [b for b in budgets if b > generated_with]
            if too_large:
                raise UserError(
                    f"Budget {format_budget(too_large[0])} exceeds the {generated_with} tokens task {task} was "
                    f"generated with; score at budgets up to {format_budget(generated_with)} or re-run with a "
                    f"larger --budgets."
                )
        samples = _base_rows(table)
        if "cutoff" in modes:
            rows += _cutoff_rows(samples, budgets, think_end, texts)
        if "forced" in modes:
            continuations = {
                (row["problem_id"], row["sample_idx"], row["budget"]): row
                for row in read_task(run_dir, task, kind=CONTINUATIONS,
                                     columns=["problem_id", "sample_idx", "budget", "force_token_ids",
                                              "token_ids"]).to_pylist()
            }
            rows += _forced_rows(samples, continuations, budgets, think_end, texts, task, run_dir)
    if "conditioned" in modes:
        table = read_task(run_dir, task, columns=columns + ["budget"], kind=CONDITIONED)
        _check_complete(run_dir, task, set(table.column("problem_id").to_pylist()), problems)
        rows += _conditioned_rows(_base_rows(table), budgets, think_end, texts, task, run_dir)
    if "engine" in modes:
        table = read_task(run_dir, task, columns=columns + ["budget"], kind=ENGINE)
        _check_complete(run_dir, task, set(table.column("problem_id").to_pylist()), problems)
        rows += _engine_rows(_base_rows(table), budgets, think_end, engine, texts, task, run_dir)
    references = {problem_id: problem["reference"] for problem_id, problem in problems.items()}
    return _judge_rows(task, rows, texts, references, scorer_name, tokenizer, think_end, workers, progress,
                       answer_policy, verdict_cache)


def score_samples(task: str, samples: Sequence[dict], references: Mapping[str, str], scorer_name: str,
                  budgets: Sequence[int], tokenizer, think_end: str | None, workers: int,
                  progress: bool = False, answer_policy: str = DEFAULT_POLICY) -> pd.DataFrame:
    """Replay in-memory responses at every budget (cutoff mode) and score them; returns scores-table rows.

    The same replay, answer region and scorer call as `score_task`, for responses that never went
    to a run directory (a trainer's evaluation generations). Each sample is a dict with
    `problem_id`, `sample_idx`, `prompt` (the prompt text, which says whether the response starts
    inside a thinking block), `token_ids` and `finish_reason`; `references` maps problem ids to
    the task's references.
    """
    missing = sorted({sample["problem_id"] for sample in samples} - set(references))
    if missing:
        raise UserError(f"No reference for problem {missing[0]!r} of task {task}: pass one for every problem scored.")
    texts = _Texts()
    rows = _cutoff_rows(list(samples), sorted(set(budgets)), think_end, texts)
    return _judge_rows(task, rows, texts, references, scorer_name, tokenizer, think_end, workers, progress,
                       answer_policy)


class _ItemStream:
    """The scorer's items, made window by window as the scorer iterates (once); it has a length."""

    def __init__(self, count: int, make):
        self.count = count
        self.make = make

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return self.make()


def _stream_items(rows: list[ReplayedRow], texts: _Texts, references: Mapping[str, str], tokenizer,
                  think_end: str | None):
    """One ScoreItem per row, in order: each window of rows (texts of up to `DECODE_WINDOW_TOKENS`
    ids) is decoded in one batch, read, and dropped before the next."""
    start = 0
    while start < len(rows):
        window: dict[tuple, int] = {}
        tokens, end = 0, start
        while end < len(rows):
            key = rows[end].text_key
            if key not in window:
                length = texts.length(key)
                if window and tokens + length > DECODE_WINDOW_TOKENS:
                    break
                window[key] = len(window)
                tokens += length
            end += 1
        decoded = _decode_all(tokenizer, [texts.ids(key) for key in window])
        for row in rows[start:end]:
            yield ScoreItem(problem_id=row.problem_id, reference=references[row.problem_id],
                            answer_text=answer_region(decoded[window[row.text_key]], think_end, row.thinking),
                            finished=True if row.forced else row.finished)
        start = end


def _judge_rows(task: str, rows: list[ReplayedRow], texts: _Texts, references: Mapping[str, str], scorer_name: str,
                tokenizer, think_end: str | None, workers: int, progress: bool,
                answer_policy: str = DEFAULT_POLICY, verdict_cache=None) -> pd.DataFrame:
    """Decode each replayed response once, read its answer region, score them all in one scorer call
    (items streamed to the scorer window by window: memory is bounded by a window, not the run)."""
    from tqdm import tqdm

    if not rows:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    counts = _token_counts(rows, texts, marker_ids(tokenizer, think_end))
    items = _ItemStream(len(rows), lambda: _stream_items(rows, texts, references, tokenizer, think_end))
    bar = tqdm(total=len(items), unit="answer", desc=f"scoring {task}", disable=not progress)
    try:
        verdicts = get_scorer(scorer_name)(items, workers=workers, progress=bar.update, answer_policy=answer_policy,
                                           verdict_cache=verdict_cache)
    finally:
        bar.close()
    return pd.DataFrame({
        "task": task,
        "problem_id": [row.problem_id for row in rows],
        "sample_idx": np.array([row.sample_idx for row in rows], dtype=np.int32),
        "budget": np.array([row.budget for row in rows], dtype=np.int64),
        "mode": [row.mode for row in rows],
        "num_tokens": np.array([row.num_tokens for row in rows], dtype=np.int64),
        "finished": _bool_column([row.finished for row in rows]),
        "extracted": pd.array([verdict.extracted for verdict in verdicts], dtype="string"),
        "correct": np.array([verdict.correct for verdict in verdicts], dtype=bool),
        "timed_out": np.array([verdict.timed_out for verdict in verdicts], dtype=bool),
        "answer_source": pd.array([verdict.answer_source for verdict in verdicts], dtype="string"),
        "thinking_tokens": np.array([count.thinking_tokens for count in counts], dtype=np.int64),
        "answer_tokens": np.array([count.answer_tokens for count in counts], dtype=np.int64),
        "cut_thinking": _bool_column([count.cut_thinking for count in counts]),
        "cap_exceeded": pd.array([row.cap_exceeded for row in rows], dtype="boolean"),
    })


def _token_counts(rows: list[ReplayedRow], texts: _Texts, end_ids: tuple[int, ...]) -> list[TokenCount]:
    """Each row's thinking/answer split of the ids it is decoded from (`count_tokens`), checked against
    its `num_tokens` (the split must account for exactly the tokens the row counts)."""
    counts = []
    for row in rows:
        count = count_tokens(texts.array(row.text_key), end_ids, row.thinking, row.budget, row.finished,
                             row.uncounted)
        if count.thinking_tokens + count.answer_tokens != row.num_tokens:
            raise AssertionError(f"{row.mode} row {row.problem_id}/{row.sample_idx}@{row.budget}: thinking "
                                 f"{count.thinking_tokens} + answer {count.answer_tokens} != num_tokens {row.num_tokens}")
        counts.append(count)
    return counts


def _bool_column(values: list[bool | None]):
    # Plain bool when every value is known (every native run), so readers see the dtype they always did.
    if any(value is None for value in values):
        return pd.array(values, dtype="boolean")
    return np.array(values, dtype=bool)


def _check_complete(run_dir: Path, task: str, stored: set, problems: dict) -> None:
    if len(stored) < len(problems):
        raise UserError(
            f"Run {run_dir} is incomplete: task {task} has {len(stored)} of {len(problems)} problems generated; "
            f"re-run the same `budgeteval run` command to resume it."
        )


def pc_min(column: pa.ChunkedArray) -> int:
    """Smallest value of an integer column."""
    import pyarrow.compute as pc

    return pc.min(column).as_py()


def evaluate_run(run_dir: Path, budgets: Sequence[int] | None = None, workers: int = 4,
                 progress: bool = True, modes: Sequence[str] | None = None,
                 bootstrap: int = DEFAULT_BOOTSTRAP, bootstrap_seed: int = 0,
                 answer_policy: str | None = None, verdict_cache: Path | None = None) -> pd.DataFrame:
    """Score every task of a run at `budgets` and `modes` (default: the run's own); write scores and metrics.

    `bootstrap` resamples (seed `bootstrap_seed`) give the metrics' confidence intervals; 0 skips them.
    `answer_policy` (`budgeteval.scoring.answers.POLICIES`; default: the policy the run was last scored
    with, else `strict`) is recorded in the manifest's `scoring` section.
    Holds the run's write lock (`run_dir.lock_run`) while it scores; every file it writes is
    replaced atomically, so a kill leaves the old or the new results and re-running it finishes.
    """
    run_dir = Path(run_dir)
    read_manifest(run_dir)  # refuse a path that is not a run before the lock would create it
    with lock_run(run_dir, "score"):
        return _evaluate_locked(run_dir, budgets, workers, progress, modes, bootstrap, bootstrap_seed, answer_policy,
                                verdict_cache)


def _evaluate_locked(run_dir: Path, budgets, workers: int, progress: bool, modes, bootstrap: int,
                     bootstrap_seed: int, answer_policy: str | None,
                     verdict_cache: Path | None = None) -> pd.DataFrame:
    """`evaluate_run` once the write lock is held."""
    manifest = read_manifest(run_dir)
    budgets = sorted(set(budgets or manifest.scoring_budgets()))
    if not budgets:
        raise UserError(f"No budgets to score {run_dir} at: pass --budgets.")
    modes = list(modes or manifest.run_modes)
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise UserError(f"Mode {unknown[0]!r} is not a budget mode: use a comma-separated subset of {', '.join(MODES)}.")
    modes = [mode for mode in MODES if mode in modes]
    saved_tokenizer = tokenizer_dir(run_dir)
    if not saved_tokenizer.is_dir():
        raise UserError(f"{run_dir} has no tokenizer/ folder; the run directory is incomplete.")
    try:
        tokenizer = load_decoder(str(saved_tokenizer))
    except UserError:
        raise UserError(f"{saved_tokenizer} holds no loadable tokenizer; the run directory is damaged: remove that "
                        f"folder and re-run the command that made the run (it writes the tokenizer again).") from None
    think_end = manifest.think_end
    answer_policy = check_policy(answer_policy or recorded_answer_policy(manifest) or DEFAULT_POLICY)
    cache = VerdictCache([verdicts_dir(run_dir)] + ([shared_cache_dir(verdict_cache)] if verdict_cache else []))
    engine = engine_markers(manifest, tokenizer) if "engine" in modes else None
    frames = [
        score_task(run_dir, task, entry.scorer, budgets, tokenizer, think_end, workers, progress, modes,
                   answer_policy, cache, engine)
        for task, entry in manifest.tasks.items()
    ]
    compact(verdicts_dir(run_dir))
    if progress and (cache.hits or cache.added):
        print(f"verdicts: {cache.added} verified and cached, {cache.hits} read from the cache", file=sys.stderr)
    scores = pd.concat(frames, ignore_index=True)
    ks = default_ks(samples_per_problem(scores))
    metrics = compute_metrics(scores, ks, bootstrap=bootstrap, seed=bootstrap_seed)
    write_scores(run_dir, scores)
    write_metrics(metrics, run_dir)
    write_manifest(run_dir, manifest.replace(scoring=ScoringSection(
        budgets=tuple(budgets), modes=tuple(modes), ks=tuple(ks), think_end=think_end, bootstrap=bootstrap,
        bootstrap_seed=bootstrap_seed, answer_policy=answer_policy,
        math_verify_timeout_s=MATH_TIMEOUT_S if any(entry.scorer == "math" for entry in manifest.tasks.values()) else None)))
    return scores


def recorded_answer_policy(manifest) -> str | None:
    """The answer policy a run was scored with (a `run_dir.Manifest`); None for a run scored before
    policies were recorded."""
    return manifest.scoring.answer_policy if manifest.scoring is not None else None
