"""Parse token budgets written the way researchers write them (`2k`, `32k`, `4096`).

`2k` means 2048 tokens (k = 1024); a plain integer is exact. Budgets are positive integers.
"""

import re

from budgeteval.errors import UserError

DEFAULT_BUDGETS = (2048, 4096, 8192, 16384, 32768)
"""The default sweep: 2k, 4k, 8k, 16k, 32k."""

_BUDGET_RE = re.compile(r"^\s*(\d+)\s*([kK]?)\s*$")


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


def parse_budgets(text: str) -> tuple[int, ...]:
    """Parse a comma-separated list of budgets into sorted, de-duplicated token counts."""
    parts = [part for part in str(text).split(",") if part.strip()]
    if not parts:
        raise UserError("No budgets given: pass a comma-separated list such as 2k,4k,8k.")
    return tuple(sorted({parse_budget(part) for part in parts}))


def format_budget(tokens: int) -> str:
    """Write a budget the short way: 2048 -> '2k', 1000 -> '1000'."""
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def check_max_tokens(max_tokens: int | None, budgets) -> None:
    """Refuse a generation limit below the largest budget (`--max-tokens` of import and watch)."""
    if max_tokens and max_tokens < max(budgets):
        raise UserError(f"--max-tokens {max_tokens} is below the largest budget {format_budget(max(budgets))}.")
