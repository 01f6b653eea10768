"""The records every scorer takes and returns.

A scorer never sees the model or the store: it gets the answer region of one response (already
cut at a budget, already stripped of an unfinished thinking trace) and the task's reference.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class ScoreItem:
    """One response at one budget, ready to be judged."""

    problem_id: str
    """The problem this response answers; scorers may cache work per (problem_id, answer)."""
    reference: str
    """The task's reference answer for the problem (gold answer, `#### N` solution, test spec)."""
    answer_text: str | None
    """The text the answer is read from; None when there is no answer (unfinished thinking)."""
    finished: bool | None = None
    """Whether the response finished within its budget; None: unknown (an import that cannot
    tell), which the answer policies treat as finished (`budgeteval.scoring.answers.accepts`)."""


@dataclass(frozen=True)
class Verdict:
    """What a scorer concluded about one `ScoreItem`."""

    extracted: str | None
    """The normalised answer the scorer read (the key majority voting counts); None if none."""
    correct: bool
    """Whether the extracted answer matches the reference."""
    timed_out: bool = False
    """Verification ran out of time; such an answer counts as wrong and is reported."""
    answer_source: str | None = field(default=None, compare=False)
    """Where the answer came from: `boxed`, `stated`, `fallback` or `none` (`budgeteval.scoring.answers.SOURCES`);
    None for scorers that do not read a final answer from prose (`code`). Not compared: `==` says
    whether two verdicts read the same answer and judge it alike, whichever rule found it."""


ProgressCallback = Callable[[int], None] | None
"""Called with the number of items just finished, so a caller can advance a progress bar."""


@dataclass
class DistinctJobs:
    """Items folded onto distinct jobs, so each distinct (reference, answer) is judged once.

    Budgets and samples repeat answers a lot: a verdict depends only on the reference and the
    answer, so items with equal keys share one job. Build with `fold`, run `jobs`, then `spread`
    the per-job verdicts back over the items.
    """

    jobs: list
    """One payload per distinct key, in first-seen order."""
    item_jobs: list
    """Per item: the index of its job, or None for an item without an answer."""
    items_of_job: list
    """Per job: how many items it stands for (to advance a progress bar by items)."""

    @classmethod
    def fold(cls, items: Sequence, job_of: Callable, on_new: Callable | None = None) -> "DistinctJobs":
        """`job_of(item)` returns None (no answer) or (key, payload); equal keys share the first payload.
        `on_new(key, payload)` is called for each new key as it is found (while items still stream)."""
        index_of_key: dict = {}
        folded = cls(jobs=[], item_jobs=[], items_of_job=[])
        for item in items:
            found = job_of(item)
            if found is None:
                folded.item_jobs.append(None)
                continue
            key, payload = found
            if key not in index_of_key:
                index_of_key[key] = len(folded.jobs)
                folded.jobs.append(payload)
                folded.items_of_job.append(0)
                if on_new is not None:
                    on_new(key, payload)
            folded.item_jobs.append(index_of_key[key])
            folded.items_of_job[index_of_key[key]] += 1
        return folded

    def report_unanswered(self, progress: "ProgressCallback") -> None:
        """Advance `progress` by the items that need no job."""
        unanswered = self.item_jobs.count(None)
        if progress is not None and unanswered:
            progress(unanswered)

    def spread(self, verdict_of_job: Sequence["Verdict"], unanswered: Optional["Verdict"] = None) -> list["Verdict"]:
        """One verdict per item, in item order; an item without an answer gets `unanswered` (default:
        wrong, with nothing extracted)."""
        unanswered = Verdict(None, False) if unanswered is None else unanswered
        return [unanswered if job is None else verdict_of_job[job] for job in self.item_jobs]


def judge_each(items: Sequence[ScoreItem], judge: Callable[[ScoreItem], Verdict],
               progress: ProgressCallback = None) -> list[Verdict]:
    """`judge(item)` for every item, in order, in this process (for scorers that take microseconds
    per item), advancing `progress` one item at a time."""
    verdicts = []
    for item in items:
        verdicts.append(judge(item))
        if progress is not None:
            progress(1)
    return verdicts
