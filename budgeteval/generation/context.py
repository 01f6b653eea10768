"""Refuse budgets the model cannot hold, before the model loads.

A prompt plus its longest response must fit in the model's context: `--max-model-len` for vLLM
(and Ray, which runs vLLM), else the checkpoint config's `max_position_embeddings` (read with
`transformers.AutoConfig`, which loads no weights). Without this check transformers generates past
its positions with a warning and vLLM dies at start-up or mid-run; a run that cannot be right should
stop at once with one sentence. The openai backend is not checked: the server knows its own limit.
This module does not start engines or count thinking tokens.
"""

from dataclasses import dataclass

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget

CHECKED_BACKENDS = ("vllm", "ray", "hf")
"""Backends whose context limit is known before generation (the openai server enforces its own)."""


@dataclass(frozen=True)
class ContextLimit:
    """How many tokens one sequence (prompt + response) may hold, and where that number comes from."""

    tokens: int
    """Prompt + response tokens the model holds."""
    source: str
    """Where the limit comes from, as the message names it (`--max-model-len`, or the config's field)."""
    flag: str
    """The flag that changes it, or the advice when none does."""


def model_context_limit(backend: str, model: str, revision: str | None, max_model_len: int | None) -> ContextLimit | None:
    """The context limit of `model` on `backend`; None when it cannot be told without loading the model."""
    if backend not in CHECKED_BACKENDS:
        return None
    if backend != "hf" and max_model_len:
        return ContextLimit(max_model_len, "--max-model-len", "lower --budgets or raise --max-model-len")
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model, revision=revision)
    except Exception:  # a hub id offline, an unknown architecture: the engine finds out itself
        return None
    config = getattr(config, "text_config", None) or config
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    fix = ("lower --budgets (transformers cannot go past the model's positions)" if backend == "hf"
           else "lower --budgets (--max-model-len cannot exceed the model's own limit)")
    return ContextLimit(positions, "max_position_embeddings in the model's config", fix)


def check_budgets_fit(limit: ContextLimit | None, budget: int, extra_tokens: int, longest_prompt_tokens: int,
                      model: str) -> None:
    """Refuse `budget` when the longest prompt + the budget + `extra_tokens` (a forced string and the
    answer tokens of forced and engine modes) exceed the model's context limit."""
    if limit is None:
        return
    room = limit.tokens - longest_prompt_tokens - extra_tokens
    if budget > room:
        extra = f" plus {extra_tokens} forced-string and answer tokens" if extra_tokens else ""
        raise UserError(
            f"Budget {format_budget(budget)} does not fit {model}: its context is {limit.tokens} tokens ({limit.source}) "
            f"and the longest prompt takes {longest_prompt_tokens}{extra}, leaving {max(room, 0)} for the response; "
            f"{limit.flag}.")
