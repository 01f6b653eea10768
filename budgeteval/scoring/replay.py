"""Replay one max-budget generation at smaller budgets (docs/design.md, "Budget semantics", cutoff).

With per-request seeds the first B sampled tokens do not depend on `max_tokens`, so the first B
token ids of the max-budget response are exactly the `max_tokens=B` response. This module cuts
token ids (never text), decides whether the response finished within the budget, finds the
region the answer is read from and splits the tokens into thinking and answer. It does not score.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ReplayedResponse:
    """A stored response as it would have been with `max_tokens=budget`."""

    budget: int
    """The token budget B."""
    token_ids: tuple[int, ...]
    """The first min(len, B) response token ids."""
    num_tokens: int
    """Tokens counted at this budget: min(len(response), B)."""
    finished: bool | None
    """True iff the whole response fits in B tokens and the model stopped on its own; None when it
    fits but its finish reason is `unknown` (an import that cannot tell)."""


UNKNOWN_FINISH = "unknown"
"""The finish reason of an imported response whose file says neither why it ended nor the limit it
was generated with: it may have stopped on its own or been cut (`budgeteval import`)."""


def cut(num_ids: int, finish_reason: str, budget: int) -> tuple[int, bool | None]:
    """(tokens kept, finished) of a response of `num_ids` token ids cut at `budget` (cutoff mode),
    without touching the ids: the kept ids are the first of the returned count."""
    if budget <= 0:
        raise ValueError(f"budget must be positive, got {budget}")
    if num_ids > budget:
        return budget, False
    return num_ids, None if finish_reason == UNKNOWN_FINISH else finish_reason == "stop"


def truncate(token_ids: Sequence[int], finish_reason: str, budget: int) -> ReplayedResponse:
    """Cut a response to `budget` tokens (cutoff mode)."""
    num_tokens, finished = cut(len(token_ids), finish_reason, budget)
    return ReplayedResponse(budget=budget, token_ids=tuple(token_ids[:num_tokens]), num_tokens=num_tokens,
                            finished=finished)


def answer_region(text: str, think_end: str | None, thinking: bool) -> str | None:
    """The part of a (possibly truncated) response the answer is read from.

    For a thinking response the answer is the text after the last end-of-thinking marker; a
    response without the marker is still thinking and has no answer (None). A non-thinking
    response is scored as it is, exactly as a `max_tokens=B` run would be.
    """
    if not thinking or not think_end:
        return text
    position = text.rfind(think_end)
    if position < 0:
        return None
    return text[position + len(think_end):]


@dataclass(frozen=True)
class ThinkingSplit:
    """Where a response's tokens went: thinking (through the end-of-thinking marker) and answer."""

    thinking_tokens: int
    """Tokens from the response's start through the last end-of-thinking marker (all of them when
    the response never closed its thinking block; 0 for a non-thinking response)."""
    answer_tokens: int
    """Tokens after that marker: the region the answer is read from (`answer_region`)."""
    ended: bool
    """The thinking block was closed within these tokens (a non-thinking response: True)."""


def marker_ids(tokenizer, think_end: str | None) -> tuple[int, ...]:
    """Token ids of the end-of-thinking marker (one id for the families' special tokens), () for none."""
    if not think_end:
        return ()
    return tuple(int(token) for token in tokenizer(think_end, add_special_tokens=False)["input_ids"])


def split_thinking(token_ids: Sequence[int], end_ids: Sequence[int], thinking: bool) -> ThinkingSplit:
    """Split response ids at the last end-of-thinking marker, as `answer_region` splits the text.

    Counted on ids, not text, so thinking + answer = the ids' length exactly. The marker is searched
    as its token sequence (a single special token in the thinking families).
    """
    ids = np.asarray(token_ids)
    total = int(ids.size)
    if not thinking or not end_ids:
        return ThinkingSplit(thinking_tokens=0, answer_tokens=total, ended=True)
    width = len(end_ids)
    starts = np.flatnonzero(ids[:total - width + 1] == end_ids[0]) if total >= width else np.array([], dtype=int)
    for start in starts[::-1]:
        if width == 1 or tuple(int(token) for token in ids[start:start + width]) == tuple(end_ids):
            thought = int(start) + width
            return ThinkingSplit(thinking_tokens=thought, answer_tokens=total - thought, ended=True)
    return ThinkingSplit(thinking_tokens=total, answer_tokens=0, ended=False)


@dataclass(frozen=True)
class TokenCount:
    """Where the tokens a score row counts (`num_tokens`) went, and whether the budget found it thinking."""

    thinking_tokens: int
    """Counted tokens through the last end-of-thinking marker (0 for a non-thinking response)."""
    answer_tokens: int
    """Counted tokens after it; thinking_tokens + answer_tokens is the row's `num_tokens`."""
    cut_thinking: bool | None
    """Still thinking at the budget: a thinking response that did not finish on its own within B and
    whose first B tokens (before any forcing string) hold no end-of-thinking marker; None when the
    finish is unknown (an import) and the marker is missing."""


def count_tokens(token_ids: Sequence[int], end_ids: Sequence[int], thinking: bool, budget: int,
                 finished: bool | None, uncounted: tuple[int, int] = (0, 0)) -> TokenCount:
    """Split the decoded ids of one score row into counted thinking and answer tokens (`split_thinking`).

    `uncounted` is the [start, end) span of ids that are decoded but not counted (forced mode's
    forcing string: the harness's text, not the model's); its ids leave whichever side they fall
    on, so the two counts add up to the ids' length minus the span, which is the row's `num_tokens`.
    """
    ids = np.asarray(token_ids)
    split = split_thinking(ids, end_ids, thinking)
    start, end = uncounted
    width = max(0, end - start)
    in_thinking = max(0, min(split.thinking_tokens, end) - start) if width else 0
    thinking_tokens = split.thinking_tokens - in_thinking
    answer_tokens = split.answer_tokens - (width - in_thinking)
    if not thinking or not end_ids or finished:
        return TokenCount(thinking_tokens, answer_tokens, False)
    own = start if width else int(ids.size)  # ids before the forcing string are the model's own
    limit = min(int(budget), own)
    if not split.ended:
        ended = False
    elif split.thinking_tokens <= limit:  # the last marker already sits within the first B ids
        ended = True
    else:
        ended = split_thinking(ids[:limit], end_ids, True).ended
    return TokenCount(thinking_tokens, answer_tokens, None if (not ended and finished is None) else not ended)


@dataclass(frozen=True)
class EngineCheck:
    """What the stored ids of an engine-mode response say about the engine's thinking budget."""

    thinking_tokens: int
    """Thinking tokens as vLLM counts them: from after the start marker (from the response's first
    token when the prompt opened the block) through the last end-of-thinking marker (or the end);
    0 when the response never entered a thinking block."""
    thinking_ended: bool
    """The response closed a thinking block it was in (the end marker follows where its thinking began)."""
    forced: bool
    """The forced end string's ids occur in the response: the engine ended the thinking at the budget."""
    cap_exceeded: bool
    """The response thought past the budget plus the forced string (`thinking_tokens > B + len(force ids)`):
    the cap did not hold (a server that ignores `thinking_token_budget` shows here)."""


def _first_index(ids: np.ndarray, pattern: Sequence[int]) -> int:
    """Index of the first occurrence of `pattern` in `ids`, -1 when absent."""
    width = len(pattern)
    if not width or ids.size < width:
        return -1
    for start in np.flatnonzero(ids[:ids.size - width + 1] == pattern[0]):
        if width == 1 or tuple(int(token) for token in ids[start:start + width]) == tuple(pattern):
            return int(start)
    return -1


def check_engine_response(token_ids: Sequence[int], budget: int, start_ids: Sequence[int], end_ids: Sequence[int],
                          force_ids: Sequence[int], opened_in_prompt: bool) -> EngineCheck:
    """Count an engine-mode response's thinking from its ids and check the budget `budget` held."""
    ids = np.asarray(token_ids)
    if opened_in_prompt:
        begin = 0
    else:
        start = _first_index(ids, start_ids)
        begin = -1 if start < 0 else start + len(start_ids)
    thinking, ended = 0, False
    if begin >= 0:
        split = split_thinking(ids, end_ids, thinking=True)
        thinking = max(0, split.thinking_tokens - begin)
        ended = split.ended and split.thinking_tokens > begin
    return EngineCheck(thinking_tokens=thinking, thinking_ended=ended, forced=_first_index(ids, force_ids) >= 0,
                       cap_exceeded=thinking > budget + len(force_ids))
