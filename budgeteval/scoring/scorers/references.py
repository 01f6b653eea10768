"""Reference builders for math answers stored as LaTeX fragments rather than one clean expression.

`math_answer` turns a dataset's answer cell into the one reference string the `math` scorer wraps in
`$...$`: OlympiadBench's `final_answer` (a list; an element may itself hold several `$...$` parts,
`$69$,$84$`, and end in a stray `.`) and Minerva answers (a `$ $` inside the expression, a trailing
newline). Every part is kept, so a multi-part answer is only correct when all parts are given.
"""

import re

_MATH_DELIMITER = re.compile(r"(?<!\\)\$")


def clean_math_answer(text: str) -> str:
    """One LaTeX answer without `$` delimiters, outer whitespace or a trailing sentence period."""
    text = _MATH_DELIMITER.sub("", str(text)).strip()
    return text[:-1].rstrip() if text.endswith(".") and not text.endswith("..") else text


def math_answer(values: dict, problem_id: str) -> str:
    """Reference builder: `answer` (a string, or a list of parts) -> the parts joined with `, `."""
    del problem_id
    answer = values["answer"]
    parts = answer if isinstance(answer, (list, tuple)) else [answer]
    return ", ".join(clean_math_answer(part) for part in parts if str(part).strip())
