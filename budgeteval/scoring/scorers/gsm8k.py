"""GSM8K scorer: the final number of a response against the number of the reference solution.

Dataset: GSM8K (openai/grade-school-math); a reference is the solution text ending in `#### 18`
(or any text the answer rules below can read, e.g. a bare `18` or a final line `A: 18`).

How the predicted number is read, first rule that yields a number wins (its answer source,
`budgeteval.scoring.answers.SOURCES`, in brackets):

1. the number after the last `####` (stated: GSM8K's own final-answer marker);
2. the number inside the last complete non-empty `\\boxed{...}` / `\\fbox{...}` (boxed);
3. the number after the last "answer is" / "answer:" (so "The final answer is 18") (stated);
4. the number after the last line-initial `A:` (the format of OpenAI's example solutions) (stated);
5. the last number anywhere in the text (fallback).

Under the `strict` answer policy (the default) a response cut by its budget counts only with a
rule 1-4 answer; `lenient` also takes rule 5 from it.

Rules 1-4 take the first number after the marker. Calculator annotations `<<48/2=24>>` are
dropped first (they are scratch work, not answers). Numbers are compared as exact decimals after
removing thousands separators, a leading `$` and a trailing `%` or `.`: `$1,000.00` == `1000`,
`18.00` == `18`, `25%` == `25`. A `-` is a sign only when it does not follow a digit, letter or
`)` (so `16-3` reads 16 and 3, not -3).

Not for free-form math answers (fractions, expressions): use the `math` scorer for those.
Pure and in-process: no workers, no timeouts needed.
"""

import os
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from budgeteval.errors import UserError
from budgeteval.scoring import answers
from budgeteval.scoring.scorers.base import ProgressCallback, ScoreItem, Verdict, judge_each

CALCULATOR_ANNOTATION = re.compile(r"<<[^<>]*>>")
# Thousands-grouped numbers first so that "1,000" is one number, then plain ones.
NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?|-?\.\d+")
HASH_MARKER = re.compile(r"####")
ANSWER_MARKER = re.compile(r"answer\s*(?:is|:)", re.IGNORECASE)
A_LINE_MARKER = re.compile(r"^[ \t]*A:", re.MULTILINE)


def parse_number(token: str) -> Decimal | None:
    """The exact value of a number token (`1,000.50`, `-3`, `.5`); None if it is not one."""
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:
        return None


def format_number(value: Decimal) -> str:
    """The canonical text of a value, the key majority voting counts: `18.00` -> `18`."""
    text = format(value.normalize(), "f")
    return "0" if text == "-0" else text


def find_numbers(text: str, start: int = 0, end: int | None = None) -> list[str]:
    """Number tokens in `text[start:end]`, a `-` kept only where it reads as a sign."""
    end = len(text) if end is None else end
    tokens = []
    for match in NUMBER.finditer(text, start, end):
        token = match.group()
        if token.startswith("-") and match.start() > 0:
            before = text[match.start() - 1]
            if before.isalnum() or before == ")":
                token = token[1:]
        tokens.append(token)
    return tokens


def _number_after_last(marker: re.Pattern, text: str, line_only: bool) -> str | None:
    matches = list(marker.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    end = text.find("\n", start) if line_only else -1
    numbers = find_numbers(text, start, end if end >= 0 else len(text))
    return numbers[0] if numbers else None


def extract_number(text: str) -> str | None:
    """The answer token of a response by the rules in the module docstring; None if no number."""
    return extract_number_with_source(text)[0]


def extract_number_with_source(text: str) -> tuple[str | None, str]:
    """(answer token or None, its answer source) by the rules in the module docstring."""
    text = CALCULATOR_ANNOTATION.sub("", text)
    found = _number_after_last(HASH_MARKER, text, line_only=True)
    if found is not None:
        return found, "stated"
    span = answers.last_box_span(text)
    if span is not None:
        numbers = find_numbers(text, *span)
        if numbers:
            return numbers[0], "boxed"
    for marker in (ANSWER_MARKER, A_LINE_MARKER):
        found = _number_after_last(marker, text, line_only=True)
        if found is not None:
            return found, "stated"
    numbers = find_numbers(text)
    return (numbers[-1], "fallback") if numbers else (None, "none")


def reference_number(reference: str) -> Decimal:
    """The gold value of a reference solution (`... #### 18`, `A: 18` or `18`)."""
    token = extract_number(reference)
    value = parse_number(token) if token is not None else None
    if value is None:
        raise UserError(
            f"GSM8K reference {reference[-80:]!r} has no final number: point the task's "
            "reference field at the solution text ending in '#### N'."
        )
    return value


def judge(item: ScoreItem, answer_policy: str = answers.DEFAULT_POLICY) -> Verdict:
    """Score one item: the extracted number, and whether it equals the reference's number."""
    if item.answer_text is None:
        return Verdict(None, False, answer_source="none")
    token, source = extract_number_with_source(item.answer_text)
    value = parse_number(token) if token is not None else None
    if value is None or not answers.accepts(answer_policy, source, item.finished):
        return Verdict(None, False, answer_source="none")
    return Verdict(format_number(value), value == reference_number(item.reference), answer_source=source)


def score_batch(
    items: Sequence[ScoreItem],
    *,
    workers: int = min(4, os.cpu_count() or 1),
    progress: ProgressCallback = None,
    answer_policy: str = answers.DEFAULT_POLICY,
    verdict_cache=None,
) -> list[Verdict]:
    """One verdict per item, in order. `workers` is accepted for the common signature and unused:
    number matching is microseconds per item. `answer_policy`: see the module docstring.
    `verdict_cache` is accepted and unused: judging costs less than a cache lookup."""
    del workers, verdict_cache
    answers.check_policy(answer_policy)
    return judge_each(items, lambda item: judge(item, answer_policy), progress)
