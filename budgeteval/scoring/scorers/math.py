"""Math scorer (MATH-500, AIME): math-verify's `parse` + `verify` on the final boxed answer.

What is judged. The answer comes from one source (`budgeteval.scoring.answers`): `boxed` (the last
complete non-empty `\\boxed{...}`/`\\fbox{...}`, joined with the boxes just before it as math-verify
joins them, `\\boxed{1}, \\boxed{2}` -> `1,2`; an unclosed or empty box never counts), else `stated`
(the last "the final answer is X" / "Answer: X" / "X is the correct answer" near the end), else
`fallback` (math-verify on the last complete line of the answer text, then on its tail), else
`none`. The answer policy decides whether a response cut by its budget may use `fallback`
(`strict`: no, the default; `lenient`: yes). Box and statement go through our normalisation
(`answers.normalise_answer`: ordinals, trailing words, degree signs, text-wrapped words) and are
parsed as `\\boxed{content}` (a statement that reads as a sentence is parsed as it is) with
`[LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]`, so math-verify's
fallbacks apply inside them. At most `answers.MAX_VERIFY_CHARS` characters of an answer reach
math-verify. The reference (a bare word read as `\\text{word}`) is wrapped in `$...$` and parsed with
math-verify's default configuration. `verify` runs with its defaults (6-digit float rounding, strict).

How. The parent only reads the answer key (`answer_key`: string scanning, no math-verify), and
verifies each distinct (reference, key) once in worker processes: a verdict depends on nothing
else, so budgets and samples that repeat an answer cost one verification (`scorers.base.DistinctJobs`).
With a verdict cache (`budgeteval.scoring.verdict_cache`, namespace `cache_namespace`), a key verified
before (another budget, an earlier scoring, another run) is not verified again. Workers are started
when the first answer that needs verifying is found (`worker_pool.Prestarted`), so their start-up
overlaps the decoding of the items still streaming in; a fully cached scoring starts none.
Workers are spawned processes (`budgeteval.scoring.worker_pool`) because math-verify's timeouts use
`signal.alarm`: it never runs in the caller's process or threads. A verification math-verify reports as timed out counts as wrong with
`timed_out=True`; a worker that stays busy past a hard deadline (a hang the alarm cannot break)
is killed and replaced, and its answer counts the same way. math-verify's log records (which
quote whole responses) are kept inside the workers.

`Verdict.extracted` is `str()` of math-verify's parsed answer (`\\frac12` and `\\frac{1}{2}` both
give `1/2`, so they vote together); if nothing parses, the box content or None.

Not a sandbox (it runs no user code), and not for GSM8K-style numeric answers (`gsm8k` scorer).
"""

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from budgeteval.errors import UserError
from budgeteval.scoring import answers
from budgeteval.scoring.scorers.base import DistinctJobs, ProgressCallback, ScoreItem, Verdict
from budgeteval.scoring.verdict_cache import cache_key
from budgeteval.scoring.worker_pool import Prestarted, run_in_workers

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
DEFAULT_TIMEOUT_S = 10
"""math-verify's own parse and verify timeouts (whole seconds: they are `signal.alarm` values).

Twice math-verify's default of 5 s: a verdict must not depend on how loaded the machine is, and an
honest parse that takes over a second on an idle core can pass 5 s on a busy one (seen here at a
load average of 6 on 2 cores). Pathological inputs still end, just later."""

SCORER_VERSION = 3
"""Bump when a change could change verdicts (2: answer sources, policies, our normalisation; 3: issue 23's
statement rules, number words, bold last lines, equations up to ±1, the retried timeout)."""


# --- answer keys: cheap, in the parent --------------------------------------------------------


@dataclass(frozen=True)
class AnswerKey:
    """The part of a response a verdict depends on: equal keys always get equal verdicts."""

    source: str
    """Where the answer comes from: `boxed`, `stated` or `fallback` (`answers.SOURCES`)."""
    text: str
    """boxed: the box content; stated: the statement; fallback: the last complete line ('' if none)
    — normalised (`answers.normalise_answer`) and capped (`answers.MAX_VERIFY_CHARS`)."""
    tail: str = ""
    """fallback only: the answer text up to the end of its last complete line, its last
    `MAX_VERIFY_CHARS` characters (read when the last line gives nothing)."""


def answer_key(answer_text: str, reference: str = "") -> AnswerKey:
    """Read the answer key of one response (see the module docstring); no math-verify call.

    `reference` only selects normalisation rules (a degree sign is dropped when the reference has
    none, ...). Exact apart from that normalisation and the stripping math-verify itself does, so
    two keys that differ could still be equivalent (the workers decide), but two answers that
    share a key are judged identically.
    """
    boxed = answers.boxed_answer(answer_text)
    if boxed is not None:
        return AnswerKey("boxed", answers.cap_head(answers.normalise_answer(boxed, reference)))
    stated = answers.stated_answer(answer_text)
    if stated is not None:
        return AnswerKey("stated", answers.cap_head(answers.normalise_answer(stated, reference)))
    line, upto = answers.last_complete_line(answer_text)
    line = "" if line is None else answers.cap_head(answers.normalise_answer(line, reference, as_text=False))
    return AnswerKey("fallback", line, answers.cap_tail(upto))


# --- judging: runs in a worker (or in-process with timeout_s=None) ----------------------------


class _TimeoutCounter(logging.Handler):
    """Counts math-verify's "Timeout during ..." records: the only sign it gives of a timeout
    when it is left to its defaults (raise_on_error=False), which we keep for identical verdicts."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout during"):
            self.count += 1


_TIMEOUTS = _TimeoutCounter()


def _keep_math_verify_logs_in_worker() -> None:
    for name in ("math_verify", "latex2sympy2_extended"):
        library_logger = logging.getLogger(name)
        library_logger.handlers = [_TIMEOUTS]
        library_logger.propagate = False


@dataclass(frozen=True)
class Judgement:
    """What the worker concluded about one (reference, answer key)."""

    extracted: str | None
    """`str()` of the first parsed answer; the box content if nothing parsed; else None."""
    correct: bool
    """math-verify's verdict (False when anything timed out)."""
    timed_out: bool
    """math-verify reported a timeout while parsing or verifying, and the answer was not correct."""


def answer_extraction_config() -> list:
    """math-verify's extraction targets for answers: boxed first, then its LaTeX/number fallbacks."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]


def reference_text(reference: str) -> str:
    """The text math-verify parses for a reference: wrapped in `$...$` unless already wrapped."""
    reference = answers.normalise_reference(reference)
    return reference if reference.lstrip().startswith("$") else f"${reference}$"


@lru_cache(maxsize=4096)
def _parse_reference(reference: str, timeout_s: int | None) -> tuple[list, bool]:
    from math_verify import parse

    before = _TIMEOUTS.count
    parsed = parse(reference_text(reference), parsing_timeout=timeout_s)
    return parsed, _TIMEOUTS.count > before


def judge(reference: str, key: AnswerKey, timeout_s: int | None = None) -> Judgement:
    """Verify one answer key against a reference with math-verify.

    In-process callers (tests, notebooks) must leave `timeout_s=None`: any other value makes
    math-verify use `signal.alarm`, which only the workers of `score_batch` may do.
    """
    from math_verify import parse, verify

    before = _TIMEOUTS.count
    gold, gold_timed_out = _parse_reference(reference, timeout_s)
    config = answer_extraction_config()
    if key.source == "fallback":
        pred = parse(key.text, config, parsing_timeout=timeout_s) if key.text else []
        if not pred:
            pred = parse(key.tail, config, parsing_timeout=timeout_s)
    elif key.source == "stated" and answers.reads_as_prose(key.text):
        pred = parse(key.text, config, parsing_timeout=timeout_s)
    else:
        pred = parse(f"\\boxed{{{key.text}}}", config, parsing_timeout=timeout_s)
    correct = bool(gold and pred) and verify(gold, pred, timeout_seconds=timeout_s)
    if correct and not equations_match(gold, pred):
        correct = False
    timed_out = not correct and (gold_timed_out or _TIMEOUTS.count > before)
    extracted = key.text if key.source != "fallback" else None
    if pred:
        try:
            extracted = str(pred[0])
        except Exception:  # noqa: BLE001  (a printing bug must not turn a verdict into an error)
            pass
    return Judgement(extracted, bool(correct), timed_out)


def _equation(parsed: list):
    """The sympy equation math-verify parsed first, or None when the first parse is not an equation."""
    from sympy import Eq

    first = parsed[0] if parsed else None
    return first if isinstance(first, Eq) else None


def equations_match(gold: list, pred: list) -> bool:
    """Rule "equation up to ±1": an equation answer matches an equation reference only when
    lhs − rhs of the answer is lhs − rhs of the reference times 1 or −1.

    math-verify compares two equations by solving them, so `10x - 14y + 22z + 8 = 0` would match
    `5x - 7y + 11z + 4 = 0`; a scaled equation is a different answer when the question asks for
    coprime coefficients. The same equation rearranged or negated still matches: `y = 2x + 1`
    against `2x - y + 1 = 0` (y − 2x − 1 = −(2x − y + 1)). True when either side is no equation, or
    an equation with a side that is no expression (`x = {a, b}`): math-verify's verdict stands.
    """
    gold_equation, pred_equation = _equation(gold), _equation(pred)
    if gold_equation is None or pred_equation is None:
        return True
    from sympy import Expr, count_ops, expand, simplify

    sides = (gold_equation.lhs, gold_equation.rhs, pred_equation.lhs, pred_equation.rhs)
    if not all(isinstance(side, Expr) for side in sides):
        return True  # `x = {a, b}` (a set of solutions) or another non-expression side: not this rule's case

    gold_side = gold_equation.lhs - gold_equation.rhs
    pred_side = pred_equation.lhs - pred_equation.rhs
    for difference in (pred_side - gold_side, pred_side + gold_side):
        try:
            expanded = expand(difference)
            if expanded == 0 or (count_ops(expanded) < 100 and simplify(expanded) == 0):
                return True
        except Exception:  # noqa: BLE001  (sympy failing on an odd expression: no match by this rule)
            continue
    return False


def _judge_job(job: tuple[str, AnswerKey, int]) -> Judgement:
    return judge(*job)


def prepare_worker() -> None:
    """Set up a worker process for math-verify: its logs stay inside, and its parser is built.

    The first parse builds latex2sympy's parser and sympy's caches (a second or more on a busy
    machine); doing it before the first job keeps that out of the job's timeout.
    """
    warnings.simplefilter("ignore")  # sympy deprecation chatter would reach the user's terminal
    _keep_math_verify_logs_in_worker()
    import math_verify

    math_verify.verify(math_verify.parse("$\\frac{1}{2}$"),
                       math_verify.parse("\\boxed{0.5}", answer_extraction_config()))


# --- direct math-verify calls, as Math-Verify's own test suite makes them ---------------------


@dataclass(frozen=True)
class MathVerifyCheck:
    """One direct `parse`/`verify` call with explicit settings (used to replay Math-Verify's cases)."""

    pred: str
    """The prediction text."""
    gold: str | None = None
    """The gold text; None: only parse `pred` and report what was extracted."""
    targets: tuple[str, ...] | None = None
    """Extraction targets for both sides: "latex" (LatexExtractionConfig(boxed_match_priority=0))
    and/or "expr" (ExprExtractionConfig()); None: the library's default `parse` configuration."""
    string_options: tuple[tuple[str, Any], ...] | None = None
    """Keyword arguments of a `StringExtractionConfig` to parse `pred` with (overrides `targets`)."""
    float_rounding: int = 6
    """`verify(float_rounding=...)`."""
    strict: bool = True
    """`verify(strict=...)`."""
    allow_set_relation_comp: bool = False
    """`verify(allow_set_relation_comp=...)`."""


@dataclass(frozen=True)
class MathVerifyCheckResult:
    """What one `MathVerifyCheck` produced."""

    parsed_pred: tuple[str, ...]
    """`str()` of each element `parse` returned for the prediction."""
    verdict: bool | None
    """`verify`'s answer; None when the check had no gold."""


def run_math_verify_check(check: MathVerifyCheck, timeout_s: int | None = None) -> MathVerifyCheckResult:
    """Run one check here (in-process callers must leave `timeout_s=None`, as for `judge`)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, StringExtractionConfig, parse, verify

    parse_kwargs: dict[str, Any] = {"parsing_timeout": timeout_s}
    if check.string_options is not None:
        parse_kwargs["extraction_config"] = [StringExtractionConfig(**dict(check.string_options))]
    elif check.targets is not None:
        configs = {"latex": LatexExtractionConfig(boxed_match_priority=0), "expr": ExprExtractionConfig()}
        parse_kwargs["extraction_config"] = [configs[target] for target in check.targets]
    pred = parse(check.pred, **parse_kwargs)
    verdict = None
    if check.gold is not None:
        gold = parse(check.gold, **parse_kwargs)
        verdict = verify(
            gold,
            pred,
            float_rounding=check.float_rounding,
            strict=check.strict,
            allow_set_relation_comp=check.allow_set_relation_comp,
            timeout_seconds=timeout_s,
        )
    return MathVerifyCheckResult(tuple(str(element) for element in pred), verdict)


def _check_job(job: tuple[MathVerifyCheck, int]) -> MathVerifyCheckResult:
    return run_math_verify_check(*job)


def run_math_verify_checks(
    checks: Sequence[MathVerifyCheck],
    *,
    workers: int = DEFAULT_WORKERS,
    timeout_s: int = DEFAULT_TIMEOUT_S,
) -> list[MathVerifyCheckResult | None]:
    """Run checks in worker processes; None for a check whose worker was killed or crashed."""
    outcomes = run_in_workers(
        _check_job, [(check, timeout_s) for check in checks], workers=workers, hard_timeout_s=_hard_timeout_s(timeout_s)
    )
    return [outcome.value if outcome.status == "ok" else None for outcome in outcomes]


def _hard_timeout_s(timeout_s: int) -> float:
    # Reference parse + answer parse + up to 4 (gold x pred) comparisons, each under math-verify's
    # own alarm, plus room for process scheduling on a busy machine.
    return 6 * timeout_s + 10


# --- the scorer --------------------------------------------------------------------------------


def cache_namespace(answer_policy: str, timeout_s: int) -> str:
    """The verdict-cache namespace of this scorer (`budgeteval.scoring.verdict_cache`): everything a verdict
    depends on besides the reference and the answer key."""
    from importlib import metadata

    try:
        library = metadata.version("math-verify")
    except metadata.PackageNotFoundError:
        library = "unknown"
    return f"math/v{SCORER_VERSION}/policy={answer_policy}/math-verify={library}/timeout={int(timeout_s)}"


def _verdict_of(key: AnswerKey, outcome) -> Verdict:
    """The verdict of one verified answer key, from its worker outcome."""
    if outcome.status == "ok":
        judgement = outcome.value
        # A fallback math-verify reads nothing from is no answer at all.
        source = "none" if key.source == "fallback" and judgement.extracted is None else key.source
        return Verdict(judgement.extracted, judgement.correct, judgement.timed_out, source)
    return Verdict(key.text if key.source != "fallback" else None, False,
                   timed_out=outcome.status == "killed", answer_source=key.source)


def score_batch(
    items: Sequence[ScoreItem],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressCallback = None,
    timeout_s: int = DEFAULT_TIMEOUT_S,
    hard_timeout_s: float | None = None,
    answer_policy: str = answers.DEFAULT_POLICY,
    verdict_cache=None,
) -> list[Verdict]:
    """One verdict per item, in order; each distinct (reference, answer key) is verified once.

    `timeout_s` is math-verify's own parse/verify timeout (whole seconds, at least 1);
    `hard_timeout_s` (default `6 * timeout_s + 10`) is when a busy worker is killed.
    `answer_policy` (`answers.POLICIES`): under `strict` an item with `finished=False` whose
    answer would come from `fallback` gets no answer (source `none`, wrong, nothing verified).
    `verdict_cache` (a `budgeteval.scoring.verdict_cache.VerdictCache`): keys it knows are not verified
    again, and what is verified is added (never a timeout, a killed or failed job).
    """
    answers.check_policy(answer_policy)
    if timeout_s < 1 or int(timeout_s) != timeout_s:
        raise UserError(f"The math scorer's timeout must be a whole number of seconds (at least 1), not {timeout_s!r}.")

    def job_of(item: ScoreItem):
        if item.answer_text is None:
            return None
        key = answer_key(item.answer_text, item.reference)
        if not answers.accepts(answer_policy, key.source, item.finished):
            return None
        return (item.reference, key), (item.reference, key, int(timeout_s), item.problem_id)

    view = verdict_cache.view(cache_namespace(answer_policy, timeout_s)) if verdict_cache is not None else None
    stored_keys: list[str] = []
    cached_of_job: list[Verdict | None] = []
    prestarted = Prestarted(_judge_job, prepare_worker)
    misses = [0]

    def on_new(_key, job) -> None:
        # Looked up as each new answer is found: the first miss starts the workers, whose start-up
        # (importing math-verify) then overlaps the decoding and reading of the items still to come.
        reference, key, _, _ = job
        cached = None
        if view is not None:
            stored_keys.append(cache_key(reference, key.source, key.text, key.tail))
            cached = view.get(stored_keys[-1])
        cached_of_job.append(cached)
        if cached is None:
            misses[0] += 1
            prestarted.start(min(workers, misses[0]))

    try:
        folded = DistinctJobs.fold(items, job_of, on_new=on_new)
        folded.report_unanswered(progress)
        verdict_of_job: list[Verdict | None] = list(cached_of_job)
        to_verify = [index for index, cached in enumerate(cached_of_job) if cached is None]
        if progress is not None:
            for index, cached in enumerate(cached_of_job):
                if cached is not None:
                    progress(folded.items_of_job[index])
        outcomes = _verify(folded, to_verify, verdict_of_job, view, stored_keys, workers, timeout_s, hard_timeout_s,
                           progress, prestarted)
        prestarted.stop()  # the retry below starts its own single worker
        retried = [position for position, index in enumerate(to_verify) if verdict_of_job[index].timed_out]
        if retried:
            # A timeout may be the machine's load, not the answer: each is verified once more, alone
            # (one worker, one job at a time, after every other job ended), before it counts.
            retry_outcomes = _verify(folded, [to_verify[position] for position in retried], verdict_of_job, view,
                                     stored_keys, 1, timeout_s, hard_timeout_s, None, None)
            outcomes = list(outcomes)
            for position, outcome in zip(retried, retry_outcomes):
                outcomes[position] = outcome
    finally:
        prestarted.stop()
        if view is not None:
            view.flush()  # what was verified (retries included) survives a crash or a signal
    for index, outcome in zip(to_verify, outcomes):
        if outcome.status == "error":
            logger.warning("math-verify failed on an answer (%s); counted wrong", outcome.value)
        if verdict_of_job[index].timed_out:
            logger.warning("math-verify timed out on problem %s, answer %r: counted wrong", folded.jobs[index][3],
                           folded.jobs[index][1].text[:60])
    return folded.spread(verdict_of_job, unanswered=Verdict(None, False, answer_source="none"))


def _verify(folded: DistinctJobs, to_verify: list[int], verdict_of_job: list, view, stored_keys: list[str],
            workers: int, timeout_s: int, hard_timeout_s: float | None, progress: ProgressCallback,
            prestarted: Prestarted | None) -> list:
    """Verify the jobs `to_verify` in workers, filling `verdict_of_job` and the cache as they end."""
    def on_outcome(position: int, outcome) -> None:
        index = to_verify[position]
        verdict = _verdict_of(folded.jobs[index][1], outcome)
        verdict_of_job[index] = verdict
        if progress is not None:
            progress(folded.items_of_job[index])
        if view is not None and outcome.status == "ok" and not verdict.timed_out:
            view.put(stored_keys[index], verdict)

    return run_in_workers(
        _judge_job,
        [folded.jobs[index][:3] for index in to_verify],
        workers=workers,
        hard_timeout_s=_hard_timeout_s(timeout_s) if hard_timeout_s is None else hard_timeout_s,
        on_outcome=on_outcome,
        affinity=[folded.jobs[index][0] for index in to_verify],  # each worker parses a reference once
        initializer=prepare_worker,
        prestarted=prestarted,
    )
