"""The records that cross the generation boundary, shared by every backend.

A backend takes `GenerationRequest`s and returns, per request, its n `SampleOutput`s with the
response token ids — what replay needs. A request is a prompt with its own seed and token limit:
a problem's max-budget generation (n samples, the sweep's largest budget), a forced-mode
continuation (n=1, the answer-token limit), a conditioned-mode generation (n samples, the
conditioned limit) or an engine-mode generation (n samples, the engine's thinking budget set). Backends know nothing about tasks, budgets or scoring.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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

    def validate(self, backend: str | None = None) -> None:
        """Raise a `UserError` for the first setting outside `backend`'s ranges (None: what every backend takes)."""
        from budgeteval.generation.ranges import GENERIC_SAMPLING, SAMPLING_RANGES, check, flag_name

        # The widest ranges first, so a value no backend takes gets the same sentence everywhere.
        for ranges, context in ((GENERIC_SAMPLING, ""), (SAMPLING_RANGES.get(backend, {}), f" for --backend {backend}")):
            for name, allowed in ranges.items():
                check(flag_name(name), getattr(self, name), allowed, context)


@dataclass(frozen=True)
class GenerationRequest:
    """One problem's prompt, to be sampled n times."""

    key: str
    """Caller's identifier for the request (task and problem id, plus sample and budget for a continuation)."""
    prompt_token_ids: tuple[int, ...]
    """The prompt token ids: the rendered prompt (`budgeteval.tasks.prompts`), or for a forced continuation
    the prompt + the first B response ids + the forcing string's ids."""
    n: int
    """Number of samples."""
    seed: int
    """Per-request seed; sample i of the request is reproducible from it alone."""
    max_tokens: int
    """Response token limit (the sweep's largest budget, the answer-token limit A, or the conditioned limit)."""
    thinking_budget: int | None = None
    """Engine mode: the engine's own thinking budget (vLLM's `thinking_token_budget`); None: no thinking limit."""


@dataclass(frozen=True)
class SampleOutput:
    """One sampled response (cf. vLLM's `CompletionOutput`)."""

    token_ids: tuple[int, ...]
    """Response token ids, including a final end-of-sequence token when the model stopped."""
    text: str
    """Response text as decoded by the backend (replay decodes from `token_ids` instead)."""
    finish_reason: str
    """`stop` when the model ended the response, `length` when `max_tokens` cut it."""


class LoadsModel:
    """Mixin for backends that load the model in-process (`vllm`, `hf`): built from a run's configuration."""

    @classmethod
    def from_config(cls, config, tokenizer_path: str):
        """Load the model a run's configuration (`budgeteval.generation.config.RunConfig`) asks for."""
        return cls(config.model, tokenizer_path, config.engine, config.revision)


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


def normalise_finish_reason(reason: str | None) -> str:
    """Map engine-specific finish reasons onto `stop` / `length`."""
    return "length" if reason == "length" else "stop"
