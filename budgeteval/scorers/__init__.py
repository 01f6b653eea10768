"""Scorer registry: a scorer name in a task YAML -> the function that scores a batch.

Every scorer is a function `score_batch(items, *, workers=..., progress=None, answer_policy=...,
verdict_cache=None) -> list[Verdict]` (see `budgeteval.scorers.base`; `answer_policy` is
`budgeteval.answers.POLICIES`, which a scorer without answer sources accepts and ignores;
`verdict_cache` is a `budgeteval.verdict_cache.VerdictCache`, which a cheap scorer ignores).
`items` is iterated once, in order, and has a length: a caller may stream it. Heavy imports (math-verify, the sandbox) happen only inside the
module a task actually uses.
"""

import importlib
from typing import Callable

from budgeteval.errors import UserError

SCORERS: dict[str, str] = {
    "math": "budgeteval.scorers.math:score_batch",
    "gsm8k": "budgeteval.scorers.gsm8k:score_batch",
    "code": "budgeteval.scorers.code:score_batch",
    "choice": "budgeteval.scorers.choice:score_batch",
    "lmeval": "budgeteval.scorers.lmeval:score_batch",
}

REFERENCE_BUILDERS: dict[str, str] = {
    "code_tests": "budgeteval.scorers.code:build_reference",
    "math_answer": "budgeteval.scorers.references:math_answer",
}
"""Reference builders a task YAML may name (`fields.reference.builder`): each turns several columns
of a dataset row into the one reference string its scorer reads, `build(values, problem_id) -> str`."""


def get_scorer(name: str) -> Callable:
    """Import and return the `score_batch` function registered under `name`."""
    if name not in SCORERS:
        raise UserError(f"Unknown scorer {name!r}: use one of {', '.join(sorted(SCORERS))}.")
    module_name, attr = SCORERS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def get_reference_builder(name: str) -> Callable:
    """Import and return the reference builder registered under `name`."""
    if name not in REFERENCE_BUILDERS:
        raise UserError(f"Unknown reference builder {name!r}: use one of {', '.join(sorted(REFERENCE_BUILDERS))}.")
    module_name, attr = REFERENCE_BUILDERS[name].split(":")
    return getattr(importlib.import_module(module_name), attr)
