"""Forced mode (a thinking budget): answers forced out of one max-budget generation.

For a sample not finished within budget B, the model is made to answer from its first B response
tokens: the forcing string (end-of-thinking marker plus an answer cue) is appended and the backend
continues for at most A answer tokens (`--answer-tokens`). This is s1's budget forcing, the Qwen3
thinking-budget recipe and AnytimeReasoner's evaluation, done from the one stored generation, so
a sweep costs one generation plus short continuations (prefix caching makes the prefill cheap).

Rules (docs/design.md, "Budget semantics"):
- a sample that finished within B is used as it is (no continuation);
- a sample still thinking at B (a thinking response whose first B tokens lack the end-of-thinking
  marker, or any response of a non-thinking model) gets the forcing string, then its answer;
- a sample whose thinking ended within B but whose answer was cut gets no forcing string: it just
  continues its answer for at most A tokens (what Qwen3's recipe does; forcing a second
  `</think>` would be meaningless);
- its length at B is B plus the answer tokens generated.

This module builds continuation requests and assembles forced responses; it does not call
backends (the runner does) or score (the scorers do).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from budgeteval.generation.backends.base import GenerationRequest
from budgeteval.generation.seeds import continuation_seed

FORCE_STRINGS: dict[str, str] = {
    # Qwen3's published thinking-budget recipe (Qwen3 technical report, section 4.3; Qwen3 docs).
    "qwen3": "\n\nConsidering the limited time by the user, I have to give the solution based on the thinking "
             "directly now.\n</think>\n\n",
    # DeepSeek-R1 distills: end the thought, then cue the answer (AnytimeReasoner-style summary).
    "deepseek-r1": "\n</think>\n\n**Final Answer**\n",
    # Anything else with a `</think>` marker.
    "generic": "\n</think>\n\n**Final Answer**\n",
}
"""Forcing strings per model family: end-of-thinking marker and answer cue. `--force-string` overrides."""

THINK_STARTS: dict[str, str] = {
    "qwen3": "<think>",
    "deepseek-r1": "<think>",
    "generic": "<think>",
}
"""Start-of-thinking strings per model family (engine mode: vLLM counts thinking tokens after it)."""

def model_family(tokenizer) -> str:
    """The `FORCE_STRINGS` family of a tokenizer: `qwen3`, `deepseek-r1` or `generic`."""
    vocab = tokenizer.get_vocab()
    if "<｜Assistant｜>" in vocab:
        return "deepseek-r1"
    if "enable_thinking" in (getattr(tokenizer, "chat_template", None) or "") and "</think>" in vocab:
        return "qwen3"
    return "generic"


def default_force_string(tokenizer) -> str:
    """The forcing string for this tokenizer's model family."""
    return FORCE_STRINGS[model_family(tokenizer)]


def default_think_start(tokenizer) -> str:
    """The start-of-thinking string for this tokenizer's model family."""
    return THINK_STARTS[model_family(tokenizer)]


def engine_max_tokens(budget: int, start_tokens: int, force_tokens: int, answer_tokens: int) -> int:
    """Token limit of an engine-mode request at thinking budget B (docs/budgets.md, "engine").

    vLLM counts B thinking tokens after the start marker, then forces the end string and lets the
    answer run: a start marker the model writes itself (`start_tokens`, 0 when the prompt opened the
    block) + B thinking + the forced string + A answer tokens, so a forced answer gets its full A tokens.
    """
    return start_tokens + budget + force_tokens + answer_tokens


@dataclass(frozen=True)
class ForcePlan:
    """What happens to one sample at one budget in forced mode."""

    continued: bool
    """False when the sample finished within the budget (it is used as it is)."""
    force_token_ids: tuple[int, ...]
    """Ids appended after the first B response tokens (empty when thinking had already ended)."""


def plan_force(response_ids: Sequence[int], finish_reason: str, budget: int, still_thinking: bool,
               force_ids: Sequence[int]) -> ForcePlan:
    """Decide whether and how a sample is forced at `budget` (see the module docstring).

    `still_thinking` says whether the first `budget` tokens are still inside the thinking block
    (always True for responses of non-thinking models, which get the forcing string).
    """
    if len(response_ids) <= budget and finish_reason == "stop":
        return ForcePlan(continued=False, force_token_ids=())
    return ForcePlan(continued=True, force_token_ids=tuple(force_ids) if still_thinking else ())


def continuation_request(key: str, prompt_ids: Sequence[int], response_ids: Sequence[int], budget: int,
                         plan: ForcePlan, sample_seed: int, answer_tokens: int) -> GenerationRequest:
    """The request that continues a sample: prompt + first B response ids + forcing ids, n=1."""
    prefix = tuple(int(token) for token in prompt_ids) + tuple(int(token) for token in response_ids[:budget])
    return GenerationRequest(key=key, prompt_token_ids=prefix + plan.force_token_ids, n=1,
                             seed=continuation_seed(sample_seed, budget), max_tokens=answer_tokens)


def forced_response_ids(response_ids: Sequence[int], budget: int, force_token_ids: Sequence[int],
                        answer_ids: Sequence[int]) -> np.ndarray:
    """The forced response at `budget`: first B ids, forcing ids, answer ids (what gets decoded), as one
    int64 array (numpy, not Python ints: scoring builds one per forced row of a sweep)."""
    parts = [np.asarray(response_ids[:budget]), np.asarray(force_token_ids), np.asarray(answer_ids)]
    return np.concatenate([part.astype(np.int64, copy=False).reshape(-1) for part in parts])


def still_thinking(prefix_text: str, think_end: str | None, thinking: bool) -> bool:
    """True when a response prefix has not closed its thinking block (non-thinking output: True)."""
    if not thinking or not think_end:
        return True
    return think_end not in prefix_text
