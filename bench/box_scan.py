"""Benchmark: finding the answer box of a looping response, the old per-opening scan vs `budgeteval.scoring.answers`.

The text is what a response stuck in a loop leaves at a large budget: `\\boxed{` opened over and
over and never closed (issue 12 measured the old scan at 0.13 s for 23.5k characters, 0.58 s at
47k and 8.8 s at 94k, in the parent process). The old scan walks forward from every opening to the
end of the text (quadratic); `answers.boxed_answer` makes one pass with a brace stack (linear).
Both must find the same box (here: the one complete box at the start).

    .venv/bin/python bench/box_scan.py
"""

import os
import platform
import re
import time

from budgeteval.scoring.answers import boxed_answer

BOX_OPENING = re.compile(r"\\(?:boxed|fbox)\s*\{")
BRACE = re.compile(r"[{}]")


def old_last_box_end(text: str) -> int | None:
    """The scan `budgeteval.scoring.scorers.math` used before `budgeteval.scoring.answers` (kept here to compare)."""
    for opening in reversed(list(BOX_OPENING.finditer(text))):
        depth = 1
        for brace in BRACE.finditer(text, opening.end()):
            depth += 1 if brace.group() == "{" else -1
            if depth == 0:
                return brace.end()
    return None


def looping_text(characters: int) -> str:
    unit = "so \\boxed{x + y, and around the loop we go once again: "
    return "First \\boxed{7}. " + unit * (characters // len(unit))


def timed(function, text: str) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(text)
    return time.perf_counter() - started, result


def main() -> None:
    machine = f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    print("| characters | old scan (s) | budgeteval.scoring.answers (s) | ratio | machine |")
    print("| ---: | ---: | ---: | ---: | --- |")
    for characters in (23_500, 47_000, 94_000):
        text = looping_text(characters)
        old_s, end = timed(old_last_box_end, text)
        new_s, answer = timed(boxed_answer, text)
        assert end is not None and text[:end].endswith("\\boxed{7}") and answer == "7"
        print(f"| {len(text):,} | {old_s:.3f} | {new_s:.4f} | {old_s / new_s:.0f}x | {machine} |")


if __name__ == "__main__":
    main()
