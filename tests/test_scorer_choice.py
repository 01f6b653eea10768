"""Tests for budgeteval.scoring.scorers.choice: the letter-extraction case table and the registry."""

import json
from pathlib import Path

import pytest

from budgeteval.errors import UserError
from budgeteval.scoring.scorers.base import ScoreItem, Verdict
from budgeteval.scoring.scorers.choice import score_batch
from budgeteval.tasks.registry import get_scorer

CASES = [json.loads(line) for line in (Path(__file__).parent / "cases" / "choice_cases.jsonl").read_text().splitlines()
         if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case(case):
    [verdict] = score_batch([ScoreItem(case["id"], case["reference"], case["answer_text"])])
    assert verdict == Verdict(case["extracted"], case["correct"], answer_source=case["answer_source"])


def test_registry_and_progress():
    assert get_scorer("choice") is score_batch
    counts = []
    score_batch([ScoreItem("p", "A", text) for text in ("A", None)], progress=counts.append)
    assert sum(counts) == 2


def test_reference_must_be_one_letter():
    with pytest.raises(UserError, match="not one letter A-D"):
        score_batch([ScoreItem("p", "E", "Answer: E")])
