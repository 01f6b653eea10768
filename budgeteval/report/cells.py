"""How a number becomes the text of a table cell: the one set of cell formats every table and the viewer use.

`budgeteval report` (`budgeteval.report.tables`), `budgeteval compare` (`budgeteval.report.compare`),
`budgeteval analyze` (`budgeteval.analysis.tables`) and the viewer's index (`budgeteval.viewer.data`)
write their cells with these functions, so the same number reads the same everywhere:

- accuracies and rates in percent with one decimal (`percent`, `percent_with_stderr`), deltas in
  signed points (`signed_points`), length changes with arrows (`length_change`), token counts
  without decimals (`tokens`, `number`);
- a missing value is `EMPTY` ("—", "--" in LaTeX), a value that cannot be known `UNKNOWN`;
- run labels and task names are escaped for markdown (`escape_markdown`) and LaTeX (`escape_latex`);
- the rows of `budgeteval compare`'s tables (`comparison_cells`, `efficiency_cells`, `curve_cells`),
  which the viewer shows as they are.

Pure functions of values and rows; no file is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from budgeteval.generation.budgets import format_budget

EMPTY = "—"
"""A cell without a value (a metric a run does not have, a delta on the baseline's own row)."""

LATEX_EMPTY = "--"
"""`EMPTY` as LaTeX tables write it."""

UNKNOWN = "n/a"
"""A truncation rate that cannot be known (an import without finish reasons or --max-tokens)."""


def percent(value: float, missing: str = EMPTY) -> str:
    """A fraction in percent with one decimal (`0.4567` -> `45.7`); `missing` for NaN."""
    return missing if pd.isna(value) else f"{100 * value:.1f}"


def percent_with_stderr(value: float, stderr: float) -> str:
    """A fraction and its standard error in percent, `45.7 ± 2.1`; without a stderr `45.7`, without a value `EMPTY`."""
    if pd.isna(value):
        return EMPTY
    if pd.isna(stderr):
        return percent(value)
    return f"{100 * value:.1f} ± {100 * stderr:.1f}"


def number(value: float, places: int) -> str:
    """A number with `places` decimals (`0.4567`, 3 -> `0.457`); `EMPTY` for NaN."""
    return EMPTY if pd.isna(value) else f"{value:.{places}f}"


def tokens(value: float) -> str:
    """A token count (a mean or median) without decimals; `EMPTY` for NaN."""
    return number(value, 0)


def signed_points(delta: float) -> str:
    """A difference of fractions in signed percentage points (`0.0123` -> `+1.2`, `-0.05` -> `-5.0`)."""
    return f"{100 * delta:+.1f}"


def length_change(change: float, latex: bool = False) -> str:
    """A relative length change with an arrow: `↓40.3%` for 40.3% shorter, `↑5.0%` for longer, `±0.0%`
    when it rounds to 0.0; in LaTeX `$\\downarrow$40.3\\%`."""
    arrow_down, arrow_up, sign = ("$\\downarrow$", "$\\uparrow$", "\\%") if latex else ("↓", "↑", "%")
    shown = round(100 * change, 1)
    if shown < 0:
        return f"{arrow_down}{-shown:.1f}{sign}"
    if shown > 0:
        return f"{arrow_up}{shown:.1f}{sign}"
    return f"±0.0{sign}"


def with_delta(text: str, delta: str, latex: bool = False) -> str:
    """A cell followed by its delta in parentheses: `45.7 (+1.2)`; in LaTeX the delta is set small."""
    return f"{text}\\,{{\\scriptsize ({delta})}}" if latex else f"{text} ({delta})"


def latex_cells(texts: Sequence[str]) -> list[str]:
    """Cells as LaTeX tables write them: `EMPTY` becomes `LATEX_EMPTY`."""
    return [text.replace(EMPTY, LATEX_EMPTY) for text in texts]


def markdown_row(cells: Sequence[str]) -> str:
    """One row of a markdown table (cells already escaped)."""
    return "| " + " | ".join(cells) + " |"


def escape_markdown(text) -> str:
    """`text` safe inside a markdown table cell: a `|` would end the cell."""
    return str(text).replace("|", "\\|")


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape_latex(text) -> str:
    """`text` as LaTeX prints it literally (a run label `ours_v2` or `50%` would otherwise break the table)."""
    return "".join(_LATEX_SPECIAL.get(char, char) for char in str(text))


# --- the rows of `budgeteval compare` (`budgeteval.report.compare.Comparison`) ----------------------


def comparison_cells(row: dict, latex: bool = False) -> list[str]:
    """mean@k, pass@k, length and AES cells of one `Comparison.table` row (deltas only off the baseline)."""
    mean, passed, length = percent(row["mean"]), percent(row["pass"]), tokens(row["length"])
    if not pd.isna(row["mean_delta"]):
        mean = with_delta(mean, signed_points(row["mean_delta"]), latex)
    if not pd.isna(row["pass_delta"]):
        passed = with_delta(passed, signed_points(row["pass_delta"]), latex)
    if not pd.isna(row["length_change"]):
        length = with_delta(length, length_change(row["length_change"], latex), latex)
    texts = [mean, passed, length, number(row["aes"], 2)]
    return latex_cells(texts) if latex else texts


def efficiency_cells(row: dict, latex: bool = False) -> list[str]:
    """Accuracy per 1k tokens, the correct / incorrect lengths (changes off the baseline), OckScore and
    ACU (`EMPTY` without a parameter count) of one `Comparison.table` row."""
    texts = [percent(row["accuracy_per_1k"])]
    for column in ("length_correct", "length_incorrect"):
        text = tokens(row[column])
        change = row[f"{column}_change"]
        if not pd.isna(change):
            text = with_delta(text, length_change(change, latex), latex)
        texts.append(text)
    texts += [number(row["ockscore"], 1), number(row["acu"], 3)]
    return latex_cells(texts) if latex else texts


def curve_cells(row: dict, latex: bool = False) -> list[str]:
    """AUC (with its delta off the baseline), best mean@k and reach budget of one `Comparison.summary` row."""
    auc = number(row["auc"], 3)
    if not pd.isna(row["auc_delta"]):
        auc = with_delta(auc, f"{row['auc_delta']:+.3f}", latex)
    reach = EMPTY if pd.isna(row["reach_budget"]) else format_budget(int(row["reach_budget"]))
    texts = [auc, percent(row["best_mean"]), reach]
    return latex_cells(texts) if latex else texts
