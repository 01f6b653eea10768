"""The records every scorer takes and returns.

A scorer never sees the model or the store: it gets the answer region of one response (already
cut at a budget, already stripped of an unfinished thinking trace) and the task's reference.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass(frozen=True)
class ScoreItem:
    """One response at one budget, ready to be judged."""

    problem_id: str
    """The problem this response answers; scorers may cache work per (problem_id, answer)."""
    reference: str
    """The task's reference answer for the problem (gold answer, `#### N` solution, test spec)."""
    answer_text: Optional[str]
    """The text the answer is read from; None when there is no answer (unfinished thinking)."""
    finished: Optional[bool] = None
    """Whether the response finished within its budget; None: unknown (an import that cannot
    tell), which the answer policies treat as finished (`budgeteval.answers.accepts`)."""


@dataclass(frozen=True)
class Verdict:
    """What a scorer concluded about one `ScoreItem`."""

    extracted: Optional[str]
    """The normalised answer the scorer read (the key majority voting counts); None if none."""
    correct: bool
    """Whether the extracted answer matches the reference."""
    timed_out: bool = False
    """Verification ran out of time; such an answer counts as wrong and is reported."""
    answer_source: Optional[str] = field(default=None, compare=False)
    """Where the answer came from: `boxed`, `stated`, `fallback` or `none` (`budgeteval.answers.SOURCES`);
    None for scorers that do not read a final answer from prose (`code`). Not compared: `==` says
    whether two verdicts read the same answer and judge it alike, whichever rule found it."""


ProgressCallback = Optional[Callable[[int], None]]
"""Called with the number of items just finished, so a caller can advance a progress bar."""
