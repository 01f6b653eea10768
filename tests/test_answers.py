"""Tests for budgeteval.scoring.answers and the answer policies: case tables for every answer source, both
policies and every normalisation rule (real response endings from ../shared/generations plus
hand-written edge cases), the box scanner and the size cap. Box scanning time: bench/box_scan.py."""

import json
from pathlib import Path

import pytest

from budgeteval.errors import UserError
from budgeteval.scoring import answers
from budgeteval.scoring.scorers import gsm8k as gsm8k_scorer
from budgeteval.scoring.scorers import math as math_scorer
from budgeteval.scoring.scorers.base import ScoreItem

CASES_DIR = Path(__file__).parent / "cases"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


SOURCE_CASES = read_jsonl(CASES_DIR / "answer_source_cases.jsonl")
NORMALISATION_CASES = read_jsonl(CASES_DIR / "normalisation_cases.jsonl")
POLICY_CASES = read_jsonl(CASES_DIR / "answer_policy_cases.jsonl")


@pytest.mark.parametrize("case", SOURCE_CASES, ids=[case["id"] for case in SOURCE_CASES])
def test_answer_source_case(case: dict) -> None:
    key = math_scorer.answer_key(case["text"], case["reference"])
    assert (key.source, key.text) == (case["source"], case["key_text"])


def test_source_tables_cover_every_source_and_real_endings() -> None:
    assert {case["source"] for case in SOURCE_CASES} == {"boxed", "stated", "fallback"}
    assert {case["strict"]["source"] for case in POLICY_CASES} == set(answers.SOURCES)
    assert sum(case["origin"] != "hand" for case in SOURCE_CASES) >= 8


@pytest.mark.parametrize("case", NORMALISATION_CASES, ids=[case["id"] for case in NORMALISATION_CASES])
def test_normalisation_case(case: dict) -> None:
    assert answers.normalise_answer(case["answer"], case["reference"]) == case["normalised"]


def test_normalised_answers_verify(tmp_path) -> None:
    items = [ScoreItem(case["id"], case["reference"], f"So \\boxed{{{case['answer']}}}.", finished=True)
             for case in NORMALISATION_CASES]
    verdicts = math_scorer.score_batch(items, workers=2)
    assert {case["id"]: verdict.correct for case, verdict in zip(NORMALISATION_CASES, verdicts)} == {
        case["id"]: case["correct"] for case in NORMALISATION_CASES}
    assert {case["rule"] for case in NORMALISATION_CASES} == {
        "ordinal suffix", "trailing words", "degree sign", "text-wrapped word", "number word"}


@pytest.mark.parametrize("policy", answers.POLICIES)
def test_policy_cases(policy: str) -> None:
    got, expected = {}, {}
    for scorer_name, module in (("math", math_scorer), ("gsm8k", gsm8k_scorer)):
        cases = [case for case in POLICY_CASES if case["scorer"] == scorer_name]
        items = [ScoreItem(case["id"], case["reference"], case["answer_text"], finished=case["finished"])
                 for case in cases]
        options = {"workers": 2} if scorer_name == "math" else {}
        verdicts = module.score_batch(items, answer_policy=policy, **options)
        got.update({case["id"]: (v.answer_source, v.correct) for case, v in zip(cases, verdicts)})
        expected.update({case["id"]: (case[policy]["source"], case[policy]["correct"]) for case in cases})
    assert got == expected


def test_unknown_policy_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--answer-policy strict or lenient"):
        gsm8k_scorer.score_batch([ScoreItem("p", "#### 1", "1")], answer_policy="loose")


def test_accepts_is_the_documented_rule() -> None:
    assert answers.accepts("strict", "fallback", True) and answers.accepts("strict", "fallback", None)
    assert not answers.accepts("strict", "fallback", False)
    assert answers.accepts("lenient", "fallback", False)
    assert all(answers.accepts(policy, source, False) for policy in answers.POLICIES for source in ("boxed", "stated"))
    assert not any(answers.accepts(policy, "none", True) for policy in answers.POLICIES)


def test_box_scanner_matches_forward_scanning_from_each_opening() -> None:
    text = "a \\boxed{1} b \\boxed{x^{2}} c \\boxed{\\frac{1}{2} } \\boxed{open {" + "} z \\fbox {q}"
    openings = answers.box_openings(text)
    for _start, content_start, close in openings:
        depth, found = 1, None
        for position in range(content_start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                found = position
                break
        assert close == found
    # `\\boxed{open {} z ...` never closes (the box after it sits inside it): only complete boxes are found.
    assert [box.content(text) for box in answers.find_boxes(text)] == ["1", "x^{2}", "\\frac{1}{2}", "q"]
    assert sum(close is None for _, _, close in openings) == 1


def test_explicit_answers_are_what_the_scorer_reads_from_each_alone() -> None:
    text = ("Try \\boxed{3}, no. \\boxed{\\phantom{2}} So the answer is 4. Hmm. 5 is the correct answer\n"
            "Final: \\boxed{ } The final answer is \\boxed{6}. Answer: 7")
    found = answers.explicit_answers(text)
    assert [(f.source, f.text(text)) for f in found] == [
        ("boxed", "\\boxed{3}"), ("stated", "the answer is 4"), ("stated", "5 is the correct answer"),
        ("boxed", "\\boxed{6}"), ("stated", "Answer: 7")]
    assert [f.end for f in found] == sorted(f.end for f in found)
    # Scored alone, each gives its own source and answer; the last one is the scorer's answer of the text.
    keys = [math_scorer.answer_key(f.text(text)) for f in found]
    assert [(key.source, key.text) for key in keys] == [("boxed", "3"), ("stated", "4"), ("stated", "5"),
                                                        ("boxed", "6"), ("stated", "7")]
    assert answers.stated_answer(text) == "7" and answers.boxed_answer(text) == "6"
    # The stated answer is the last of `find_statements` in the window, on every source case.
    for case in SOURCE_CASES:
        window = max(0, len(case["text"]) - answers.STATED_WINDOW_CHARS)
        statements = answers.find_statements(case["text"], window)
        assert answers.stated_answer(case["text"]) == (statements[-1].answer(case["text"]) if statements else None)


def test_what_reaches_math_verify_is_capped() -> None:
    looping = "We keep going and going. " * 10_000
    # Digits only: the character cap binds (a box of 5,000 `1+` is cut earlier, by the operator bound
    # of issue 23's rule "bounded structure": see the test below).
    key = math_scorer.answer_key(looping + "\n\\boxed{" + "12" * 5000 + "1}")
    assert key.source == "boxed" and len(key.text) == answers.MAX_VERIFY_CHARS
    operators = math_scorer.answer_key(looping + "\n\\boxed{" + "1+" * 5000 + "1}")
    assert operators.source == "boxed" and operators.text.count("+") == answers.MAX_VERIFY_OPERATORS
    fallback = math_scorer.answer_key(looping + "\nSo 7")
    assert fallback.source == "fallback" and len(fallback.tail) == answers.MAX_VERIFY_CHARS
    assert fallback.tail.endswith("So 7") and fallback.text == "So 7"


def test_bounded_structure_reaches_math_verify() -> None:
    """Rule "bounded structure" (issue 23): what reaches math-verify holds at most MAX_VERIFY_BOXES box
    openings, MAX_VERIFY_OPERATORS operators and MAX_VERIFY_DEPTH nesting, whatever its length."""
    looping = "We check again. " + "\\boxed{} and " * 200 + "so x = 3"
    tail = answers.cap_tail(looping)
    assert tail.count("\\boxed") == answers.MAX_VERIFY_BOXES and tail.endswith("so x = 3")
    head = answers.cap_head("\\boxed{} " * 200)
    assert head.count("\\boxed") == answers.MAX_VERIFY_BOXES
    assert answers.cap_tail("1+" * 1000 + "1").count("+") == answers.MAX_VERIFY_OPERATORS
    nested = "{" * 100 + "x" + "}" * 100
    assert answers.cap_head(nested).count("{") == answers.MAX_VERIFY_DEPTH
    assert answers.cap_tail(nested).count("}") == answers.MAX_VERIFY_DEPTH
    for plain in ("\\frac{1}{2}", "x = 42", "(1, 2)", "5x - 7y + 11z + 4 = 0"):
        assert answers.cap_head(plain) == answers.cap_tail(plain) == plain
