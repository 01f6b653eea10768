"""Tests for budgeteval.scoring.scorers.gsm8k: hand cases from a table, and OpenAI's own labels."""

import json
from pathlib import Path

import pytest
from conftest import shared_path

from budgeteval.errors import UserError
from budgeteval.scoring.scorers.base import ScoreItem, Verdict
from budgeteval.scoring.scorers.gsm8k import extract_number, score_batch
from budgeteval.tasks.registry import get_scorer

pytestmark = [pytest.mark.shared]

CASES_DIR = Path(__file__).parent / "cases"
HAND_CASES = [json.loads(line) for line in (CASES_DIR / "gsm8k_cases.jsonl").read_text().splitlines()]
DISAGREEMENTS_PATH = CASES_DIR / "gsm8k_openai_disagreements.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", HAND_CASES, ids=[case["id"] for case in HAND_CASES])
def test_hand_case(case: dict) -> None:
    [verdict] = score_batch([ScoreItem(case["id"], case["reference"], case["answer_text"])])
    assert verdict == Verdict(case["extracted"], case["correct"])


def test_registry_returns_this_scorer() -> None:
    assert get_scorer("gsm8k") is score_batch


def test_progress_counts_every_item() -> None:
    items = [ScoreItem("p", "#### 1", text) for text in ("1", "2", None)]
    counts: list[int] = []
    score_batch(items, progress=counts.append)
    assert sum(counts) == 3


def test_reference_without_a_number_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no final number"):
        score_batch([ScoreItem("p", "no number here", "18")])


def test_extract_number_prefers_markers_in_documented_order() -> None:
    text = "17 then \\boxed{16}, the answer is 15\nA: 14\n#### 13\nand 12"
    assert extract_number(text) == "13"
    assert extract_number(text.replace("#### 13", "")) == "16"
    assert extract_number("the answer is 15\nA: 14\nand 12") == "15"
    assert extract_number("A: 14\nand 12") == "14"
    assert extract_number("and 12") == "12"


def test_agrees_with_openai_labels() -> None:
    rows = read_jsonl(shared_path("generations", "gsm8k_openai_example_solutions.jsonl"))
    items = [ScoreItem(str(row["problem_idx"]), row["gold_solution"], row["response"]) for row in rows]
    verdicts = score_batch(items)
    disagreements = {
        (row["model"], row["problem_idx"]): verdict.correct
        for row, verdict in zip(rows, verdicts)
        if verdict.correct != row["repo_correct"]
    }
    expected = {(row["model"], row["problem_idx"]): row["ours"] for row in read_jsonl(DISAGREEMENTS_PATH)}
    assert disagreements == expected, "the disagreement set changed: update the file with a reason per row"
    assert (len(rows), len(disagreements)) == (5276, 0)  # today's figure, exact: every label agrees
