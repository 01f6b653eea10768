"""The records that cross the generation boundary, shared by every backend.

A backend takes `GenerationRequest`s (one per problem, holding all its n samples) and returns,
per request, n `SampleOutput`s with the response token ids — what replay needs. Backends know
nothing about tasks, budgets below the maximum, or scoring.
"""

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence


@dataclass(frozen=True)
class SamplingConfig:
    """Sampling settings shared by every request of a run (recorded in the manifest)."""

    temperature: float = 0.6
    """Softmax temperature; 0 means greedy."""
    top_p: float = 0.95
    """Nucleus sampling mass."""
    top_k: int = -1
    """Keep the k most likely tokens; -1 (or 0) disables."""
    min_p: float = 0.0
    """Minimum probability relative to the most likely token; 0 disables."""

    def __post_init__(self):
        # The ranges every backend accepts; `RunConfig` checks the stricter ones of its backend.
        from budgeteval.ranges import GENERIC_SAMPLING

        self.check(GENERIC_SAMPLING)

    def check(self, ranges: dict, context: str = "") -> None:
        """Raise a `UserError` for the first setting outside `ranges` (field -> `budgeteval.ranges.Range`)."""
        from budgeteval.ranges import check, flag_name

        for name, allowed in ranges.items():
            check(flag_name(name), getattr(self, name), allowed, context)


@dataclass(frozen=True)
class GenerationRequest:
    """One problem's prompt, to be sampled n times."""

    key: str
    """Caller's identifier for the request (task and problem id)."""
    prompt_token_ids: tuple[int, ...]
    """The rendered prompt, tokenized once by `budgeteval.prompts`."""
    n: int
    """Number of samples."""
    seed: int
    """Per-request seed; sample i of the request is reproducible from it alone."""
    max_tokens: int
    """Response token limit: the largest budget of the sweep."""


@dataclass(frozen=True)
class SampleOutput:
    """One sampled response (cf. vLLM's `CompletionOutput`)."""

    token_ids: tuple[int, ...]
    """Response token ids, including a final end-of-sequence token when the model stopped."""
    text: str
    """Response text as decoded by the backend (replay decodes from `token_ids` instead)."""
    finish_reason: str
    """`stop` when the model ended the response, `length` when `max_tokens` cut it."""


class Backend(Protocol):
    """What the runner needs from a generation engine."""

    name: str
    """Registry name (`vllm`, `openai`, `hf`)."""

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingConfig) -> list[list[SampleOutput]]:
        """Return, for each request in order, its n samples in sample order."""
        ...

    def describe(self) -> dict:
        """Engine facts for the manifest (versions, dtype, parallel sizes)."""
        ...

    def close(self) -> None:
        """Free the engine."""
        ...


def normalise_finish_reason(reason: Optional[str]) -> str:
    """Map engine-specific finish reasons onto `stop` / `length`."""
    return "length" if reason == "length" else "stop"
