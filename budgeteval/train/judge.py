"""Correctness of raw completion texts, for trainer rewards: budgeteval's scorers without a run directory.

A trainer's reward function sees decoded completions and references, not stored token ids; this
module reads each completion's answer region and calls the scorer registered under a name, once
for the whole batch (so the math scorer verifies each distinct answer once, in its worker
processes: safe from any thread, because math-verify's `signal.alarm` never runs in the caller's
process). It does not replay budgets (`budgeteval.scoring.evaluate.score_samples` does, for the evaluation
callback) and does not compute rewards (`budgeteval.train.rewards`).
"""

from collections.abc import Sequence
from typing import Any

from budgeteval.scoring.replay import answer_region
from budgeteval.scoring.scorers.base import ScoreItem, Verdict
from budgeteval.tasks.registry import get_scorer


def judge_texts(texts: Sequence[str], references: Sequence[str], scorer: str, *, think_end: str | None = None,
                problem_ids: Sequence[str] | None = None, workers: int = 2) -> list[Verdict]:
    """One verdict per completion text, in order.

    `think_end` (e.g. `</think>`): the answer is read after its last occurrence and a completion
    without it is unfinished (wrong), as for thinking models in `budgeteval run`; None scores the
    whole text. `problem_ids` only label the items (for the scorer's logs); default: the index.
    """
    if len(texts) != len(references):
        raise ValueError(f"{len(texts)} completions but {len(references)} references")
    ids = [str(index) for index in range(len(texts))] if problem_ids is None else [str(pid) for pid in problem_ids]
    items = [
        ScoreItem(problem_id=pid, reference=str(reference),
                  answer_text=answer_region(str(text), think_end, thinking=bool(think_end)))
        for pid, text, reference in zip(ids, texts, references)
    ]
    return get_scorer(scorer)(items, workers=workers) if items else []


def ground_truth_text(ground_truth: Any) -> str:
    """A trainer's ground truth as the reference text scorers take (a one-element list is its element)."""
    if isinstance(ground_truth, (list, tuple)) and len(ground_truth) == 1:
        return str(ground_truth[0])
    return str(ground_truth)
