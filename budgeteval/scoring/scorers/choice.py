"""Multiple-choice scorer (GPQA-Diamond): the letter A-D a response picks, against the reference letter.

Dataset: any task whose reference is one letter A-D (the `gpqa_choices` row builder makes it for
GPQA, see `budgeteval.tasks.row_builders`). The answer region is read the way the answer sources
of every scorer are named, first rule that yields a letter wins:

1. `boxed`: the content of the last brace-balanced `\\boxed{...}`/`\\fbox{...}`, when it is one
   letter, possibly wrapped: `\\boxed{C}`, `\\boxed{(C)}`, `\\boxed{\\text{C}}`, `\\boxed{C) 4.2 eV}`;
2. `stated`: the letter of the last final-answer sentence: `Answer: C`, `answer is (C)`,
   `Final Answer: **C**`, `ANSWER: C` (simple-evals' `Answer: $LETTER` format and its variants);
3. `fallback`: the last parenthesised letter `(C)`, else the last standalone capital A-D (a
   letter with no letter or digit beside it, so `Ca` or `B12` do not count).

`none`: no answer region (an unfinished thinking trace) or no letter. A box or sentence that holds
no single letter falls through to the next rule. Only capital letters count, so the article "a"
is never read as a choice; a sentence-initial "A" can be (only by `fallback`, which the strict
answer policy never credits in a response cut by the budget).

`Verdict.extracted` is the letter (the key majority voting counts). Pure and in-process.
"""

import os
import re
from collections.abc import Sequence

from budgeteval.errors import UserError
from budgeteval.scoring import answers
from budgeteval.scoring.scorers.base import ProgressCallback, ScoreItem, Verdict, judge_each

LETTERS = "ABCD"
"""The choices a reference may name."""

# One letter, optionally in (), [], \text{}/\mathrm{}/\textbf{}, ** **, and optionally followed by
# the choice's text after `)`, `.` or `:` (`C) 4.2 eV`).
_WRAPPED_LETTER = re.compile(
    r"^\s*(?:\\(?:text|mathrm|textbf|mathbf)\s*\{\s*)?[\(\[*]*\s*([A-D])\s*[\)\]*]*\s*\}?\s*(?:[\)\.:].*)?$",
    re.DOTALL)
_STATED = re.compile(
    r"answer\s*(?:is|:)?\s*(?:\*\*|\$)?\s*[:\-]?\s*(?:\*\*)?\s*(?:\\text\{)?\s*[\(\[]?\s*([A-D])\b(?![\w'])",
    re.IGNORECASE)
_PARENTHESISED = re.compile(r"\(([A-D])\)")
_STANDALONE = re.compile(r"(?<![A-Za-z0-9\\])([A-D])(?![A-Za-z0-9])")


def extract_choice(text: str | None) -> tuple[str | None, str]:
    """(letter, answer source) of an answer region by the rules in the module docstring."""
    if text is None:
        return None, "none"
    span = answers.last_box_span(text)
    if span is not None:
        match = _WRAPPED_LETTER.match(text[span[0]:span[1]])
        if match:
            return match.group(1), "boxed"
    stated = [match for match in _STATED.finditer(text) if match.group(1).isupper()]
    if stated:
        return stated[-1].group(1), "stated"
    for pattern in (_PARENTHESISED, _STANDALONE):
        found = pattern.findall(text)
        if found:
            return found[-1], "fallback"
    return None, "none"


def reference_letter(reference: str) -> str:
    """The gold letter; a reference that is not one letter A-D is a task mistake."""
    letter = reference.strip()
    if len(letter) != 1 or letter not in LETTERS:
        raise UserError(f"Choice reference {reference[:40]!r} is not one letter A-D: point the task's reference "
                        f"at the correct letter (the gpqa_choices row builder writes it).")
    return letter


def judge(item: ScoreItem, answer_policy: str = answers.DEFAULT_POLICY) -> Verdict:
    """Score one item: the letter read, whether it is the reference's, and where it was read.

    Under the strict policy a `fallback` letter of a response cut by the budget does not count
    (`budgeteval.scoring.answers.accepts`): it is reported with source `none` and no letter."""
    gold = reference_letter(item.reference)
    letter, source = extract_choice(item.answer_text)
    if letter is None or not answers.accepts(answer_policy, source, item.finished):
        return Verdict(None, False, answer_source="none")
    return Verdict(letter, letter == gold, answer_source=source)


def score_batch(
    items: Sequence[ScoreItem],
    *,
    workers: int = min(4, os.cpu_count() or 1),
    progress: ProgressCallback = None,
    answer_policy: str = answers.DEFAULT_POLICY,
    verdict_cache=None,
) -> list[Verdict]:
    """One verdict per item, in order. `workers` is accepted for the common signature and unused:
    reading a letter is microseconds per item. `answer_policy`: see `judge`.
    `verdict_cache` is accepted and unused: judging costs less than a cache lookup."""
    del workers, verdict_cache
    answers.check_policy(answer_policy)
    return judge_each(items, lambda item: judge(item, answer_policy), progress)
