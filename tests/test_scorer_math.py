"""Tests for budgeteval.scoring.scorers.math: hand cases, dedup, the worker pool's protections, and real
labels (Qwen2.5-Math's checker on its own outputs; Math-Verify's own test-suite verdicts).

Every math-verify call here goes through spawned workers, as in production: each `score_batch`
starts a pool (about a second), so cases are scored in as few batches as possible.
"""

import ast
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import shared_path

from budgeteval.scoring.scorers import math as math_scorer
from budgeteval.scoring.scorers.base import ScoreItem, Verdict
from budgeteval.scoring.scorers.math import (
    AnswerKey,
    MathVerifyCheck,
    answer_key,
    run_in_workers,
    run_math_verify_checks,
    score_batch,
)
from budgeteval.tasks.registry import get_scorer

pytestmark = [pytest.mark.shared]

CASES_DIR = Path(__file__).parent / "cases"
HAND_CASES = [json.loads(line) for line in (CASES_DIR / "math_cases.jsonl").read_text().splitlines()]
DISAGREEMENTS_PATH = CASES_DIR / "qwen25math_disagreements.jsonl"
WORKERS = 2


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hand_verdicts() -> dict[str, Verdict]:
    """Verdicts of all hand cases, one `score_batch` per (timeout_s, hard_timeout_s) group."""
    groups = defaultdict(list)
    for case in HAND_CASES:
        groups[(case.get("timeout_s", 5), case.get("hard_timeout_s"))].append(case)
    verdicts = {}
    for (timeout_s, hard_timeout_s), cases in groups.items():
        items = [ScoreItem(case["id"], case["reference"], case["answer_text"]) for case in cases]
        results = score_batch(items, workers=WORKERS, timeout_s=timeout_s, hard_timeout_s=hard_timeout_s)
        verdicts.update({case["id"]: verdict for case, verdict in zip(cases, results)})
    return verdicts


@pytest.mark.parametrize("case", HAND_CASES, ids=[case["id"] for case in HAND_CASES])
def test_hand_case(case: dict, hand_verdicts: dict[str, Verdict]) -> None:
    verdict = hand_verdicts[case["id"]]
    assert (verdict.correct, verdict.timed_out) == (case["correct"], case["timed_out"])
    if "extracted" in case:
        assert verdict.extracted == case["extracted"]


def test_registry_returns_this_scorer() -> None:
    assert get_scorer("math") is score_batch


def test_answer_key_is_the_last_complete_box_and_ignores_surrounding_text() -> None:
    assert answer_key("so \\boxed{ 12 } done") == answer_key("\\boxed{12}") == AnswerKey("boxed", "12")
    assert answer_key("x \\boxed{\\frac{1}{2}}") == AnswerKey("boxed", "\\frac{1}{2}")
    assert answer_key("\\boxed{5} then cut \\boxed{\\frac{1") == AnswerKey("boxed", "5")
    assert answer_key("no box: 5") == AnswerKey("fallback", "no box: 5", "no box: 5")
    # Exact otherwise: a key never merges answers that differ inside the box.
    assert answer_key("\\boxed{1 2}") != answer_key("\\boxed{12}")


def test_each_distinct_answer_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    dispatched_jobs = []

    def counting_run_in_workers(job_function, jobs, **kwargs):
        dispatched_jobs.extend(jobs)
        return run_in_workers(job_function, jobs, **kwargs)

    monkeypatch.setattr(math_scorer, "run_in_workers", counting_run_in_workers)
    # A replayed sweep: 2 problems x 3 samples x 4 budgets, unfinished at the smallest budget,
    # then the same text at every larger budget.
    samples = [
        ("p1", "\\frac{1}{2}", "Thus \\boxed{\\frac{1}{2}}.", True),
        ("p1", "\\frac{1}{2}", "So the answer is \\boxed{\\frac{1}{2}}", True),
        ("p1", "\\frac{1}{2}", "\\boxed{0.5}", True),
        ("p2", "7", "\\boxed{7}", True),
        ("p2", "7", "we get \\boxed{8}", False),
        ("p2", "7", "\\boxed{7} indeed", True),
    ]
    items, expected = [], []
    for problem_id, reference, text, correct in samples:
        for budget_index in range(4):
            finished = budget_index > 0
            items.append(ScoreItem(problem_id, reference, text if finished else None))
            expected.append(finished and correct)
    progress: list[int] = []
    verdicts = score_batch(items, workers=WORKERS, progress=progress.append)

    # Distinct (reference, answer key): (1/2, "\\frac{1}{2}"), (1/2, "0.5"), (7, "7"), (7, "8").
    assert sorted((reference, key.text) for reference, key, _ in dispatched_jobs) == [
        ("7", "7"), ("7", "8"), ("\\frac{1}{2}", "0.5"), ("\\frac{1}{2}", "\\frac{1}{2}")
    ]
    assert [verdict.correct for verdict in verdicts] == expected
    assert sum(progress) == len(items)
    assert {verdict.extracted for verdict in verdicts[:12]} == {None, "1/2"}  # 0.5 votes with 1/2


def test_hung_worker_is_killed_and_replaced() -> None:
    started = time.monotonic()
    outcomes = run_in_workers(time.sleep, [60, 0], workers=1, hard_timeout_s=2)
    assert [outcome.status for outcome in outcomes] == ["killed", "ok"]
    assert time.monotonic() - started < 30


def test_prestarted_workers_are_adopted_and_unadopted_ones_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    from budgeteval.scoring import worker_pool

    prestarted = worker_pool.Prestarted(time.sleep)
    prestarted.start(2)
    early = list(prestarted.workers)
    started_later = []

    class CountingWorker(worker_pool._Worker):
        def __init__(self, *args):
            started_later.append(self)
            super().__init__(*args)

    monkeypatch.setattr(worker_pool, "_Worker", CountingWorker)
    outcomes = run_in_workers(time.sleep, [0, 0, 0], workers=2, hard_timeout_s=30, prestarted=prestarted)
    assert [outcome.status for outcome in outcomes] == ["ok"] * 3
    assert not started_later and prestarted.workers == []
    assert not any(worker.process.is_alive() for worker in early)
    prestarted.start(1)
    with pytest.raises(ValueError, match="another function"):  # workers of another function are never adopted
        run_in_workers(time.time, [0], workers=1, hard_timeout_s=30, prestarted=prestarted)
    prestarted.start(2)
    unadopted = list(prestarted.workers)
    prestarted.stop()
    assert not any(worker.process.is_alive() for worker in unadopted)


def test_large_answer_waits_for_a_free_worker_instead_of_blocking_the_parent() -> None:
    # A ~1 MB answer without a box is sent whole; queued behind a hung verification it would fill
    # the pipe and block the parent in `send` until math-verify's own 20 s alarm (extracted would
    # then read "9**(9**9)"), so the backstop could not fire at 1.5 s.
    large_answer = "We add the numbers step by step. " * 30_000 + "The final answer is $1$. I hope it is correct."
    items = [ScoreItem("hang", "1", "\\boxed{9^{9^{9}}}"), ScoreItem("large", "1", large_answer)]
    verdicts = score_batch(items, workers=1, timeout_s=20, hard_timeout_s=1.5)
    assert verdicts == [Verdict("9^{9^{9}}", False, timed_out=True), Verdict("1", True)]


def test_crashed_worker_and_raising_job_are_reported() -> None:
    assert [o.status for o in run_in_workers(os._exit, [3], workers=1, hard_timeout_s=30)] == ["crashed"]
    [outcome] = run_in_workers(int, ["not a number"], workers=1, hard_timeout_s=30)
    assert outcome.status == "error" and outcome.value.startswith("ValueError")


def test_worker_logs_stay_out_of_the_terminal(capfd: pytest.CaptureFixture) -> None:
    # When its alarm fires while parsing, math-verify logs the whole input at WARNING.
    marker = "UNIQUE-MARKER-IN-INPUT"
    pathological = f"{marker} " + "1 " * 100_000 + "="  # a 100k-number extraction scan: > 1 s
    # Answers reach math-verify capped (answers.MAX_VERIFY_CHARS), references whole: the reference
    # is the input that can still be this large.
    [verdict] = score_batch([ScoreItem("p", pathological, "\\boxed{1}")], workers=1, timeout_s=1)
    assert verdict.timed_out
    assert marker not in capfd.readouterr().err


def test_agrees_with_qwen25_math_labels() -> None:
    rows = read_jsonl(shared_path("generations", "qwen25math_math_cot_100.jsonl"))
    items = [ScoreItem(str(row["problem_idx"]), row["gold"], row["response"]) for row in rows]
    verdicts = score_batch(items, workers=WORKERS)
    disagreements = {
        (row["problem_idx"], row["sample_idx"]): verdict.correct
        for row, verdict in zip(rows, verdicts)
        if verdict.correct != row["repo_correct"]
    }
    expected = {(row["problem_idx"], row["sample_idx"]): row["ours"] for row in read_jsonl(DISAGREEMENTS_PATH)}
    assert disagreements == expected, "the disagreement set changed: update the file with a reason per row"
    assert (len(rows), len(disagreements)) == (800, 1)  # today's figure, exact: 799 of 800 agree
    assert not any(verdict.timed_out for verdict in verdicts)


def check_from_case(case: dict) -> MathVerifyCheck:
    """The `MathVerifyCheck` a row of Math-Verify's restated test cases describes."""
    config = case["config"]
    if "extraction_config" in config:
        # A restated constructor call, e.g. `StringExtractionConfig(strings=("U",))`: read its
        # literal keyword arguments without evaluating the text.
        call = ast.parse(config["extraction_config"]["__python_expr__"], mode="eval").body
        assert isinstance(call, ast.Call) and call.func.id == "StringExtractionConfig" and not call.args
        options = tuple((keyword.arg, ast.literal_eval(keyword.value)) for keyword in call.keywords)
        return MathVerifyCheck(pred=case["pred"], string_options=options)
    if config.get("parse") == "library defaults":
        return MathVerifyCheck(pred=case["pred"], gold=case["gold"])
    return MathVerifyCheck(
        pred=case["pred"],
        gold=case["gold"],
        targets=tuple(config["match_types"]),
        float_rounding=config["precision"],
        strict=config["strict"],
        allow_set_relation_comp=config["allow_set_relation_comp"],
    )


def test_reproduces_math_verify_test_suite() -> None:
    cases = read_jsonl(shared_path("equivalence", "math_verify_cases.jsonl"))
    results = run_math_verify_checks([check_from_case(case) for case in cases], workers=WORKERS)
    mismatches = []
    for case, result in zip(cases, results):
        if case["kind"] == "extraction":
            if result is None or list(result.parsed_pred) != case["expected_parse"]:
                mismatches.append(case["id"])
        elif result is None or result.verdict != bool(case["expected"]):
            mismatches.append(case["id"])
    assert mismatches == []
