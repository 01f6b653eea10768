"""The code scorer: extraction, LiveCodeBench's comparison rules, private-test decoding, and
known-correct / known-wrong programs for real LiveCodeBench problems (both stdin and functional)."""

import base64
import dataclasses
import json
import pickle
import zlib
from pathlib import Path

import pytest
from conftest import read_cases, shared_path

from budgeteval.errors import UserError
from budgeteval.scoring.sandbox import SandboxLimits
from budgeteval.scoring.scorers import code as code_scorer
from budgeteval.scoring.scorers.base import ScoreItem
from budgeteval.scoring.scorers.code import (
    build_reference,
    decode_test_cases,
    extract_code,
    parse_reference,
    restricted_unpickle,
    score_batch,
    stdout_matches,
)
from budgeteval.tasks.loading import load_problems, load_task

pytestmark = [pytest.mark.sandbox, pytest.mark.shared]

CASES = Path(__file__).parent / "cases"
LIMITS = SandboxLimits(cpu_time_s=2, wall_time_s=8)


@pytest.fixture(scope="module")
def lcb_problems() -> dict:
    """The problems the solution table covers, loaded through the task (references built by it)."""
    task = load_task("livecodebench", {"livecodebench": str(shared_path("data", "livecodebench_v5_public_tests.jsonl"))},
                     {"livecodebench": {"end": "2023-08-21"}})
    wanted = {case["problem_id"] for case in read_cases("livecodebench_solutions.jsonl")}
    problems = {problem.problem_id: problem for problem in load_problems(task) if problem.problem_id in wanted}
    assert set(problems) == wanted
    return problems


# --- extraction and comparison tables ------------------------------------------------------------


@pytest.mark.parametrize("case", read_cases("code_extract_cases.jsonl"), ids=lambda case: case["note"])
def test_extraction_cases(case):
    assert extract_code(case["text"]) == case["code"]


def test_no_answer_region_means_no_program():
    assert extract_code(None) is None


@pytest.mark.parametrize("case", read_cases("code_compare_cases.jsonl"), ids=lambda case: case["note"])
def test_stdout_comparison_cases(case):
    assert stdout_matches(case["actual"], case["expected"]) is case["match"]


def test_return_value_cases(sandbox):
    cases = read_cases("code_return_cases.jsonl")
    for case in cases:
        outcome = sandbox.run_python(f"def answer(x):\n    return {case['returns']}\n", b"0", function="answer",
                                     limits=LIMITS)
        assert outcome.status == "ok", (case, outcome)
        assert code_scorer.return_value_matches(outcome.result, case["expected"]) is case["match"], case


# --- private tests: base64(zlib(pickle(JSON))), decoded without unrestricted unpickling -------------


def _encode(obj) -> str:
    return base64.b64encode(zlib.compress(pickle.dumps(obj))).decode()


TESTS_JSON = json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}])


def test_lcb_style_private_tests_decode():
    assert decode_test_cases(_encode(TESTS_JSON)) == decode_test_cases(TESTS_JSON)
    assert [t.output for t in decode_test_cases(_encode(json.loads(TESTS_JSON)))] == ["3\n"]


class _Exploit:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.path}",))


def test_a_pickle_that_calls_code_is_refused_and_never_runs(tmp_path):
    sentinel = tmp_path / "pwned"
    payload = _encode(_Exploit(str(sentinel)))
    with pytest.raises(UserError, match="Problem abc999_x: its private_tests cannot be decoded.*not allowed"):
        build_reference({"public_tests": "[]", "private_tests": payload, "metadata": "{}"}, "abc999_x")
    assert not sentinel.exists()


@pytest.mark.parametrize("value", [{1, 2}, (1, 2), 7, 1.5, None, True], ids=repr)
def test_only_str_bytes_list_dict_may_come_out(value):
    with pytest.raises(ValueError, match="not allowed"):
        restricted_unpickle(pickle.dumps(value))


def test_restricted_unpickle_keeps_plain_data():
    data = {"a": [b"x", "y", {"z": []}]}
    for protocol in range(3, pickle.HIGHEST_PROTOCOL + 1):  # older protocols spell bytes with a global call
        assert restricted_unpickle(pickle.dumps(data, protocol=protocol)) == data


@pytest.mark.parametrize("cell, reason", [
    ("not base64 !!!", "neither JSON nor base64"),
    (base64.b64encode(b"plain bytes").decode(), "not zlib data"),
    (base64.b64encode(zlib.compress(b"garbage")).decode(), "invalid pickle"),
    ("[{\"input\": 1}]", "test 0 is not an object"),
    ("[{\"input\": \"1\"", "invalid JSON"),
], ids=["base64", "zlib", "pickle", "shape", "json"])
def test_undecodable_rows_name_the_problem(cell, reason):
    with pytest.raises(UserError, match=f"Problem 3001: its private_tests cannot be decoded \\({reason}"):
        build_reference({"public_tests": "[]", "private_tests": cell, "metadata": "{}"}, "3001")


def test_decompression_is_capped(monkeypatch):
    monkeypatch.setattr(code_scorer, "MAX_DECODED_BYTES", 1000)
    with pytest.raises(ValueError, match="more than 1000 bytes"):
        decode_test_cases(base64.b64encode(zlib.compress(bytes(5000))).decode())


def test_problem_without_tests_is_refused():
    with pytest.raises(UserError, match="Problem abc350_c has no test cases"):
        build_reference({"public_tests": "[]", "private_tests": "[]", "metadata": "{}"}, "abc350_c")


def test_reference_records_mode_and_tests_in_lcb_order():
    reference = parse_reference(build_reference({
        "public_tests": json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}]),
        "private_tests": _encode(json.dumps([{"input": "[2]", "output": "2", "testtype": "functional"}])),
        "metadata": json.dumps({"func_name": "f"}), "platform": "leetcode"}, "9"))
    assert (reference.mode, reference.fn_name, reference.platform) == ("functional", "f", "leetcode")
    assert [test.input for test in reference.tests] == ["[1]", "[2]"]


def test_a_non_code_reference_is_one_clear_error():
    with pytest.raises(UserError, match="not a code-tests reference"):
        score_batch([ScoreItem("p", "42", "```python\nprint(42)\n```")], workers=1)


# --- real LiveCodeBench problems -------------------------------------------------------------------


def test_known_solutions_score_as_they_should(lcb_problems, sandbox):
    cases = read_cases("livecodebench_solutions.jsonl")
    items = [ScoreItem(case["problem_id"], lcb_problems[case["problem_id"]].reference, case["response"])
             for case in cases]
    verdicts = score_batch(items, workers=2, limits=LIMITS, sandbox=sandbox)
    for case, verdict in zip(cases, verdicts):
        expected = case["verdict"]
        assert verdict.correct is (expected == "passed"), (case["note"], verdict)
        if expected is None:
            assert verdict.extracted is None, case["note"]
        else:
            assert verdict.extracted.split(":")[0] == expected, (case["note"], verdict)
    platforms = {parse_reference(lcb_problems[case["problem_id"]].reference).mode for case in cases}
    assert platforms == {"stdin", "functional"}


class _CountingSandbox:
    def __init__(self, sandbox):
        self.sandbox, self.programs = sandbox, set()

    def run_python(self, source, stdin=b"", **kwargs):
        self.programs.add(source)
        return self.sandbox.run_python(source, stdin, **kwargs)


def test_each_distinct_program_runs_once(lcb_problems, sandbox):
    cases = {case["note"]: case for case in read_cases("livecodebench_solutions.jsonl")}
    right, wrong = cases["integer ceiling division"], cases["float division loses precision on 10^18"]
    reference = lcb_problems["abc302_a"].reference
    thinking = "I think this is easy.\n\n"
    items = ([ScoreItem("abc302_a", reference, right["response"])] * 5
             + [ScoreItem("abc302_a", reference, thinking + right["response"])] * 3
             + [ScoreItem("abc302_a", reference, wrong["response"]), ScoreItem("abc302_a", reference, None)])
    counting = _CountingSandbox(sandbox)
    done = []
    verdicts = score_batch(items, workers=2, limits=LIMITS, sandbox=counting, progress=done.append)
    assert len(counting.programs) == 2 and sum(done) == len(items)
    assert [verdict.correct for verdict in verdicts] == [True] * 8 + [False, False]
    assert len({verdict.extracted for verdict in verdicts[:8]}) == 1


def test_cached_programs_do_not_run_again_and_give_the_same_verdicts(lcb_problems, sandbox, tmp_path):
    from budgeteval.scoring.verdict_cache import VerdictCache

    cases = {case["note"]: case for case in read_cases("livecodebench_solutions.jsonl")}
    right, wrong = cases["integer ceiling division"], cases["float division loses precision on 10^18"]
    reference = lcb_problems["abc302_a"].reference
    items = [ScoreItem("abc302_a", reference, right["response"]), ScoreItem("abc302_a", reference, wrong["response"])]
    cold = _CountingSandbox(sandbox)
    first = score_batch(items, workers=2, limits=LIMITS, sandbox=cold, verdict_cache=VerdictCache([tmp_path]))
    warm = _CountingSandbox(sandbox)
    again = score_batch(items, workers=2, limits=LIMITS, sandbox=warm, verdict_cache=VerdictCache([tmp_path]))
    assert len(cold.programs) == 2 and not warm.programs
    assert again == first == score_batch(items, workers=2, limits=LIMITS, sandbox=sandbox)
    # Other sandbox limits are another namespace: the programs run again.
    other = _CountingSandbox(sandbox)
    score_batch(items, workers=2, limits=dataclasses.replace(LIMITS, wall_time_s=LIMITS.wall_time_s + 1),
                sandbox=other, verdict_cache=VerdictCache([tmp_path]))
    assert len(other.programs) == 2
