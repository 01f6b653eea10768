"""Row builders: a registered function a task YAML names (`dataset.row_builder`) that derives columns
from a dataset row before the task's fields and prompt template read it.

Each builder takes one row (a dict of the dataset's columns) and returns the new columns; the row
keeps its own. Builders are pure and deterministic: the same row gives the same columns on every
machine, in every run and at any `--limit`, because nothing depends on row order or a global seed.
"""

import hashlib
import importlib
import random
from collections.abc import Callable

from budgeteval.errors import UserError

ROW_BUILDERS: dict[str, str] = {
    "gpqa_choices": "budgeteval.tasks.row_builders:gpqa_choices",
}

GPQA_LETTERS = "ABCD"
GPQA_SHUFFLE_SALT = "budgeteval-gpqa-v1"
"""Part of the shuffle seed: changing it changes every question's order (bump the task's version)."""


def gpqa_choice_order(record_id: str) -> list[int]:
    """The order GPQA's four answers are shown in for one question: indices into
    [Correct Answer, Incorrect Answer 1, Incorrect Answer 2, Incorrect Answer 3].

    The rule: `random.Random(seed).shuffle([0, 1, 2, 3])` with `seed` the first 8 bytes (big-endian)
    of sha256(f"{GPQA_SHUFFLE_SALT}:{record_id}"). It depends only on the question's `Record ID`, so
    every run, every user and every subset (`--limit`, a filter) sees the same order, and the correct
    answer's position is spread over A-D across questions rather than fixed.
    """
    seed = int.from_bytes(hashlib.sha256(f"{GPQA_SHUFFLE_SALT}:{record_id}".encode()).digest()[:8], "big")
    order = [0, 1, 2, 3]
    random.Random(seed).shuffle(order)
    return order


def gpqa_choices(row: dict) -> dict:
    """GPQA's columns -> `choice_A` .. `choice_D` (the shuffled answers, stripped) and `answer_letter`."""
    missing = [column for column in ("Record ID", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                     "Incorrect Answer 3") if row.get(column) is None]
    if missing:
        raise UserError(f"GPQA row {row.get('Record ID')!r} has no {missing[0]!r}: the data must have the columns of "
                        f"the hub's Idavidrein/gpqa (gpqa_diamond).")
    answers = [row["Correct Answer"], row["Incorrect Answer 1"], row["Incorrect Answer 2"], row["Incorrect Answer 3"]]
    order = gpqa_choice_order(str(row["Record ID"]))
    built = {f"choice_{letter}": str(answers[index]).strip() for letter, index in zip(GPQA_LETTERS, order)}
    built["answer_letter"] = GPQA_LETTERS[order.index(0)]
    return built


def get_row_builder(name: str) -> Callable[[dict], dict]:
    """Import and return the row builder registered under `name`."""
    if name not in ROW_BUILDERS:
        raise UserError(f"Unknown row builder {name!r}: use one of {', '.join(sorted(ROW_BUILDERS))}.")
    module_name, attr = ROW_BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)
