"""The names a task YAML may use for its scorer and its reference builder, as lazy "module:attr" strings.

A task is checked when it loads (before any model or generation), so the tasks stage owns the
vocabulary; the functions themselves live in the scoring stage and are imported only when called.
Every scorer is a function `score_batch(items, *, workers=..., progress=None, answer_policy=...,
verdict_cache=None) -> list[Verdict]` (see `budgeteval.scoring.scorers.base`; `answer_policy` is
`budgeteval.scoring.answers.POLICIES`, which a scorer without answer sources accepts and ignores;
`verdict_cache` is a `budgeteval.scoring.verdict_cache.VerdictCache`, which a cheap scorer ignores).
`items` is iterated once, in order, and has a length: a caller may stream it.
"""

import importlib
from collections.abc import Callable

from budgeteval.errors import UserError

SCORERS: dict[str, str] = {
    "math": "budgeteval.scoring.scorers.math:score_batch",
    "gsm8k": "budgeteval.scoring.scorers.gsm8k:score_batch",
    "code": "budgeteval.scoring.scorers.code:score_batch",
    "choice": "budgeteval.scoring.scorers.choice:score_batch",
    "lmeval": "budgeteval.scoring.scorers.lmeval:score_batch",
}
"""Scorers a task YAML may name (`scorer:`), each a batch scoring function."""

REFERENCE_BUILDERS: dict[str, str] = {
    "code_tests": "budgeteval.scoring.scorers.code:build_reference",
    "math_answer": "budgeteval.scoring.scorers.references:math_answer",
}
"""Reference builders a task YAML may name (`fields.reference.builder`): each turns several columns
of a dataset row into the one reference string its scorer reads, `build(values, problem_id) -> str`."""


def _resolve(registry: dict[str, str], kind: str, name: str) -> Callable:
    if name not in registry:
        raise UserError(f"Unknown {kind} {name!r}: use one of {', '.join(sorted(registry))}.")
    module_name, attr = registry[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


def get_scorer(name: str) -> Callable:
    """Import and return the `score_batch` function registered under `name`."""
    return _resolve(SCORERS, "scorer", name)


def get_reference_builder(name: str) -> Callable:
    """Import and return the reference builder registered under `name`."""
    return _resolve(REFERENCE_BUILDERS, "reference builder", name)
