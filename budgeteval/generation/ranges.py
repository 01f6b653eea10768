"""The allowed range of every numeric setting, checked once when a config record is built.

The frozen records in `budgeteval.generation.config` and `budgeteval.generation.backends.base` call `check` from their
`__post_init__`, so a bad value is refused with one sentence (the flag, the value, the range)
before a tokenizer, dataset or engine is loaded. Sampling ranges depend on the backend: vLLM (and
the OpenAI API its server follows) refuses a temperature above 2, transformers does not. This
module only checks values; it does not know how any backend uses them.
"""

import math
from dataclasses import dataclass

from budgeteval.errors import UserError


@dataclass(frozen=True)
class Range:
    """An interval of allowed values, with how to say it in a sentence."""

    low: float | None = None
    """Smallest allowed value (None: unbounded)."""
    high: float | None = None
    """Largest allowed value (None: unbounded)."""
    low_open: bool = False
    """Whether `low` itself is excluded."""
    integer: bool = False
    """Whether the value must be a whole number."""
    note: str = ""
    """What special values mean, appended to the sentence (e.g. `0 is greedy`)."""

    def contains(self, value) -> bool:
        """Whether `value` is allowed."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.integer and value != int(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high

    def describe(self) -> str:
        """The range in words: `in (0, 1]`, `at least 1`, `in [0, 2]`."""
        kind = "an integer " if self.integer else "a number "
        if self.low is not None and self.high is not None:
            text = f"{kind}in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}]"
        elif self.low is not None:
            text = f"{kind}{'above' if self.low_open else 'at least'} {_number(self.low)}"
        else:
            text = kind.strip()
        return text + (f" ({self.note})" if self.note else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check(flag: str, value, allowed: Range, context: str = "") -> None:
    """Raise a `UserError` naming `flag`, `value` and the range unless `allowed` contains `value`."""
    if value is None or allowed.contains(value):
        return
    raise UserError(f"{flag} {value!r} is out of range{context}: use {allowed.describe()}.")


def check_choice(flag: str, value, choices, context: str = "") -> None:
    """Raise a `UserError` naming `flag`, `value` and the choices unless `value` is one of them."""
    if value not in choices:
        raise UserError(f"{flag} {value!r} is not valid{context}: use one of {', '.join(map(str, choices))}.")


POSITIVE = Range(low=1, integer=True)
"""Counts that must be at least 1 (samples, problems, workers, tokens)."""

NON_NEGATIVE_INT = Range(low=0, integer=True)
"""Counts that may be 0 (retries, bootstrap resamples)."""

_TOP_K = Range(low=-1, integer=True, note="-1 or 0 turn top-k off")
_TOP_P = Range(low=0, high=1, low_open=True, note="1 turns nucleus sampling off")
_MIN_P = Range(low=0, high=1, note="0 turns it off")

SAMPLING_RANGES: dict[str, dict[str, Range]] = {
    # vLLM's SamplingParams (0.32) refuses temperature > 2; the OpenAI API documents [0, 2] too.
    "vllm": {"temperature": Range(low=0, high=2, note="0 is greedy"), "top_p": _TOP_P, "top_k": _TOP_K,
             "min_p": _MIN_P},
    "openai": {"temperature": Range(low=0, high=2, note="0 is greedy"), "top_p": _TOP_P, "top_k": _TOP_K,
               "min_p": _MIN_P},
    "hf": {"temperature": Range(low=0, note="0 is greedy"), "top_p": _TOP_P, "top_k": _TOP_K, "min_p": _MIN_P},
}
SAMPLING_RANGES["ray"] = SAMPLING_RANGES["vllm"]  # Ray's actors run budgeteval's vLLM engine
"""Backend -> sampling field -> allowed range (`--temperature`, `--top-p`, `--top-k`, `--min-p`)."""

GENERIC_SAMPLING = SAMPLING_RANGES["hf"]
"""Ranges every backend accepts at least (checked when no backend is known yet)."""


def flag_name(field: str) -> str:
    """The command-line flag of a config field: `top_p` -> `--top-p`."""
    return "--" + field.replace("_", "-")
