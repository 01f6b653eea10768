"""Parse token budgets written the way researchers write them (`2k`, `32k`, `4096`, `256:8k:256`).

`2k` means 2048 tokens (k = 1024); a plain integer is exact. Budgets are positive integers. A list
item may be a range: `START:STOP:STEP` is the linear ladder START, START+STEP, ... up to STOP
(`256:8k:256`), `START:STOP:xF` the geometric one START, START·F, START·F², ... up to STOP
(`1k:32k:x2`; each value rounded to a whole token). STOP is included when the ladder lands on it.
A dense ladder in forced mode is a probe of the trace every STEP tokens (Dynasor's "probe every k
tokens"; Fu et al. 2024, arXiv:2412.20993).
"""

import math
import re

from budgeteval.errors import UserError

DEFAULT_BUDGETS = (2048, 4096, 8192, 16384, 32768)
"""The default sweep: 2k, 4k, 8k, 16k, 32k."""

_BUDGET_RE = re.compile(r"^\s*(\d+)\s*([kK]?)\s*$")
_FACTOR_RE = re.compile(r"^\s*[xX]\s*(\d+(?:\.\d+)?)\s*$")

MAX_RANGE_BUDGETS = 4096
"""A range naming more budgets than this is refused (almost surely a typo, and each budget is scored)."""


def parse_budget(text: str) -> int:
    """Return the number of tokens that `text` names (`2k` -> 2048, `100` -> 100)."""
    match = _BUDGET_RE.match(str(text))
    if not match:
        raise UserError(
            f"Budget {text!r} is not a token count: write a positive integer (4096) or a multiple of 1024 like 4k."
        )
    value = int(match.group(1)) * (1024 if match.group(2) else 1)
    if value <= 0:
        raise UserError(f"Budget {text!r} must be a positive number of tokens (for example 2k or 512).")
    return value


def parse_budget_range(text: str) -> tuple[int, ...]:
    """The budgets a range names: `256:1k:256` -> (256, 512, 768, 1024), `1k:8k:x2` -> (1024, 2048, 4096, 8192)."""
    pieces = str(text).split(":")
    if len(pieces) != 3:
        raise UserError(f"Budget range {text!r} must be START:STOP:STEP (256:8k:256) or START:STOP:xFACTOR (1k:32k:x2).")
    start, stop = parse_budget(pieces[0]), parse_budget(pieces[1])
    if stop < start:
        raise UserError(f"Budget range {text!r} ends below where it starts: write the smaller budget first.")
    factor = _FACTOR_RE.match(pieces[2])
    if factor:
        ratio = float(factor.group(1))
        if ratio <= 1:
            raise UserError(f"Budget range {text!r}: the factor must be above 1 (x2 doubles each budget).")
        count = math.floor(math.log(stop / start) / math.log(ratio) + 1e-9) + 1
        _check_range_size(text, count)
        values = {round(start * ratio ** i) for i in range(count)}
    else:
        step = parse_budget(pieces[2])
        count = (stop - start) // step + 1
        _check_range_size(text, count)
        values = set(range(start, stop + 1, step))
    return tuple(sorted(value for value in values if start <= value <= stop))


def _check_range_size(text: str, count: int) -> None:
    if count > MAX_RANGE_BUDGETS:
        raise UserError(f"Budget range {text!r} names {count} budgets, more than {MAX_RANGE_BUDGETS}: "
                        f"use a larger step.")


def parse_budgets(text: str) -> tuple[int, ...]:
    """Parse a comma-separated list of budgets and ranges into sorted, de-duplicated token counts."""
    parts = [part for part in str(text).split(",") if part.strip()]
    if not parts:
        raise UserError("No budgets given: pass a comma-separated list such as 2k,4k,8k.")
    budgets: set[int] = set()
    for part in parts:
        budgets.update(parse_budget_range(part) if ":" in part else (parse_budget(part),))
    return tuple(sorted(budgets))


def format_budget(tokens: int) -> str:
    """Write a budget the short way: 2048 -> '2k', 1000 -> '1000'."""
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def check_max_tokens(max_tokens: int | None, budgets) -> None:
    """Refuse a generation limit below the largest budget (`--max-tokens` of import and watch)."""
    if max_tokens and max_tokens < max(budgets):
        raise UserError(f"--max-tokens {max_tokens} is below the largest budget {format_budget(max(budgets))}.")
