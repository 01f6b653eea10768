"""Where the answer of a response comes from, and which answers an answer policy accepts.

Pure string functions, no math-verify: the scorers (`math`, `gsm8k`, and any scorer reading a
final answer from prose), the importer and the analysis's intermediate answers (`explicit_answers`:
every box and statement of a text, found by the same rules) share them. An answer has one of four
sources, tried in this order:

- `boxed`: the last complete, non-empty `\\boxed{...}`/`\\fbox{...}` (with the boxes just before it
  that math-verify's own rule joins to it, `\\boxed{1}, \\boxed{2}` -> `1,2`); an unclosed box (a
  cut) and an empty one (`\\boxed{}`, `\\boxed{\\phantom{2}}`) never count and never join;
- `stated`: the last explicit final-answer statement in the last `STATED_WINDOW_CHARS` of the
  answer region: "the (final) answer is X", "Answer: X", "X is the correct/final answer" (X the
  expression ending its sentence, "So, I think 48" -> 48); a question ("is the answer 18?") and a
  verdict word ("our answer is correct") are no statements;
- `fallback`: nothing explicit; the scorer reads the text itself (for `math`: math-verify on the
  last complete line first, then on the tail of the text);
- `none`: no answer (a thinking response cut before its answer, or refused by the policy).

Answer policies (`--answer-policy`): `strict` (the default) accepts `fallback` only from a response
that finished within its budget; `lenient` accepts it from any response. A response whose finish
is unknown (an import without finish reasons or a generation limit) counts as finished.

Box scanning is one linear pass over the text (a brace stack), so a looping response full of
unclosed boxes costs what its length costs. Whatever a scorer sends to math-verify is at most
`MAX_VERIFY_CHARS` characters and bounded by structure (`cap_head`, `cap_tail`).
"""

import bisect
import re
from dataclasses import dataclass

from budgeteval.errors import UserError

SOURCES = ("boxed", "stated", "fallback", "none")
"""Answer sources, in the order they are tried (`none`: no answer)."""

EXPLICIT_SOURCES = ("boxed", "stated")
"""Sources the strict policy accepts from a response cut by its budget."""

POLICIES = ("strict", "lenient")
"""Answer policies: strict never credits a cut response from `fallback`; lenient does."""

DEFAULT_POLICY = "strict"
"""The policy `run`, `score` and `import` use unless `--answer-policy` says otherwise."""

MAX_VERIFY_CHARS = 4096
"""The most characters of one answer sent to math-verify: a box or statement is cut to its first
4,096 characters, a fallback text to its last 4,096. Real answers are far shorter (the longest box in
the Qwen2.5-Math outputs is under 100 characters); the cap bounds the time a looping 32k-token
response can cost math-verify's regexes and parser."""

STATED_WINDOW_CHARS = 1000
"""How far from the end of the answer region a final-answer statement may start (about 300 tokens):
a statement in the middle of the reasoning ("so the answer is not 5 ...") is not the final one."""

_BOX_OR_BRACE = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")
_VALID_SEPARATOR = re.compile(r"\b(and|or)\b|,|;")  # math-verify's rule for joining nearby boxes
_EMPTY_CONTENT = re.compile(r"\\(?:phantom|hphantom|vphantom)\s*\{[^{}]*\}|\\[,;:!]|\\quad|\\qquad|~|\s")

_STATED_AFTER = re.compile(
    r"\b(?:the\s+)?(?:final\s+)?answer\s*(?:\*\*)?\s*(?:is\s*:?|:|=)\s*(?:\*\*)?(?!\s*not\b)",
    re.IGNORECASE,
)
_STATED_BEFORE = re.compile(
    r"\s+is\s+(?:indeed\s+)?the\s+(?:correct\s+|final\s+|right\s+)?answer\b", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\?(?:\s|$)|\n")
_SENTENCE_START = re.compile(r"(?:^|\n|\.\s|[!?:]\s)")
_CLAUSE_END = re.compile(r"[.?](?:\s|$)|\n|$")
_VERDICT_WORD = re.compile(
    r"^(?:(?:indeed|also|still|now|definitely|clearly|therefore|thus|then)\s+)*"
    r"(?:correct|incorrect|right|wrong|valid|invalid|consistent|inconsistent|confirmed|verified|reasonable"
    r"|plausible|accurate|sound)\b",
    re.IGNORECASE,
)
_NUMBER_WORD_NAMES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS_NAMES = "twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = {name: value for value, name in enumerate(_NUMBER_WORD_NAMES)}
NUMBER_WORDS.update({name: 10 * (value + 2) for value, name in enumerate(_TENS_NAMES)})
NUMBER_WORDS.update({f"{tens}-{unit}": NUMBER_WORDS[tens] + value
                     for tens in _TENS_NAMES for value, unit in enumerate(_NUMBER_WORD_NAMES[1:10], start=1)})
"""Number words `normalise_answer` reads as their number: zero ... ninety-nine (tens hyphenated)."""
_PROSE_WORD = re.compile(r"^(?:[A-Za-z]{2,}'?[A-Za-z]*|[A-Za-z]'[A-Za-z]+|[A-Za-z],)[,;:]?$")
_MATH_SPAN = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|\\[A-Za-z]+\s*\{[^{}]*\}|\S+")


def answer_of_sentence(sentence: str) -> str:
    """X of "X is the correct answer": the expression that ends the sentence before "is".

    The words of the sentence are dropped from the left up to its last prose word (two or more
    letters, or a word ending in a comma, outside math delimiters and LaTeX commands; number words
    stay): "So, I think 48" -> "48", "the value \\(x = 4\\)" -> "\\(x = 4\\)", "So," -> "".
    """
    tokens = [match for match in _MATH_SPAN.finditer(sentence)]
    keep = len(tokens)
    while keep > 0:
        token = tokens[keep - 1].group()
        if _PROSE_WORD.match(token) and token.lower().rstrip(",;:") not in NUMBER_WORDS:
            break
        keep -= 1
    if keep == len(tokens):
        return ""
    return sentence[tokens[keep].start():]


@dataclass(frozen=True)
class Box:
    """One complete `\\boxed{...}`/`\\fbox{...}` of a text."""

    start: int
    """Index of the backslash of `\\boxed`/`\\fbox`."""
    content_start: int
    """Index just past the opening brace."""
    close: int
    """Index of the matching closing brace."""

    def content(self, text: str) -> str:
        """The box content, stripped."""
        return text[self.content_start:self.close].strip()


def box_openings(text: str) -> list[tuple[int, int, int | None]]:
    """Every box opening as (start, content_start, close index or None when unclosed), in text order.

    One pass with a brace stack: a brace closes the innermost open brace, so each box's closing
    brace is the first point where the braces after its opening balance, exactly as scanning
    forward from each opening would find it, in linear time. A `}` with nothing open is ignored.
    """
    openings: list[list] = []
    stack: list[int | None] = []  # index into `openings` for a box's brace, None for a plain brace
    for match in _BOX_OR_BRACE.finditer(text):
        token = match.group()
        if token == "}":
            if stack:
                opened = stack.pop()
                if opened is not None:
                    openings[opened][2] = match.start()
        elif token == "{":
            stack.append(None)
        else:
            stack.append(len(openings))
            openings.append([match.start(), match.end(), None])
    return [(start, content_start, close) for start, content_start, close in openings]


def find_boxes(text: str) -> list[Box]:
    """The complete boxes of `text`, in the order they open."""
    return [Box(start, content_start, close) for start, content_start, close in box_openings(text) if close is not None]


def is_empty_box_content(content: str) -> bool:
    """True for box content that shows nothing: empty, spacing, or only `\\phantom{...}`."""
    return not _EMPTY_CONTENT.sub("", content)


def boxed_answer(text: str) -> str | None:
    """The box answer of `text` (see the module docstring), or None without a complete non-empty box.

    The last complete non-empty box, joined with the boxes before it the way math-verify's
    `extract_boxed_content(mode="last")` joins them: walking left, an earlier box joins if it closes
    before the later one opens and the text between them is under 10 characters, or under 70
    with a separator (and/or/comma/semicolon) and a different content; equal neighbours count once.
    Unlike math-verify, an empty box stops the walk: `\\boxed{\\phantom{2}} ... \\boxed{4}` is 4.
    """
    openings = box_openings(text)
    last = None
    for index in range(len(openings) - 1, -1, -1):
        start, content_start, close = openings[index]
        if close is not None and not is_empty_box_content(text[content_start:close]):
            last = index
            break
    if last is None:
        return None
    start, content_start, close = openings[last]
    results = [text[content_start:close].strip()]
    later_start = start
    for index in range(last - 1, -1, -1):
        start, content_start, close = openings[index]
        if close is None or close >= later_start:
            break
        content = text[content_start:close].strip()
        if is_empty_box_content(content):
            break
        between = text[close + 1:later_start]
        if not (len(between) < 10 or (content != results[-1] and len(between) < 70
                                      and _VALID_SEPARATOR.search(between))):
            break
        if content != results[-1]:
            results.append(content)
        later_start = start
    return ",".join(reversed(results))


def last_box_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the content of the last complete non-empty box alone (no joining), or None."""
    for _start, content_start, close in reversed(box_openings(text)):
        if close is not None and not is_empty_box_content(text[content_start:close]):
            return content_start, close
    return None


@dataclass(frozen=True)
class Statement:
    """One final-answer statement of a text (see `find_statements`)."""

    phrase: int
    """Index where its phrase matches ("answer is", "Answer:", or the space before "is the correct
    answer"): statements are ordered by it, and the last one is the stated answer."""
    start: int
    """Index where the statement starts: its phrase, or for "X is the answer" the start of X's sentence."""
    end: int
    """Index just past the statement: past X, or for "X is the answer" past "answer"."""
    answer_start: int
    """Index of the first character of the stated answer X."""
    answer_end: int
    """Index just past X (the period that ends its sentence is not part of it)."""

    def answer(self, text: str) -> str:
        """The stated answer X, as `stated_answer` returns it."""
        return text[self.answer_start:self.answer_end]


def find_statements(text: str, window_start: int = 0) -> list[Statement]:
    """The final-answer statements of `text` whose phrase matches from `window_start` on, in phrase order.

    "... answer is X" / "Answer: X": X runs to the end of its sentence (a period followed by a space
    or the end, or a newline). "X is the correct answer": X is its sentence up to "is". X is
    stripped of spaces and closing periods; a statement whose X has no letter or digit ("the answer
    is:" at the end of a cut text) does not count.
    """
    # (phrase index, X start, X end before stripping, statement end: None when X ends it)
    spans: list[tuple[int, int, int, int | None]] = []
    for match in _STATED_AFTER.finditer(text, window_start):
        end_match = _SENTENCE_END.search(text, match.end())
        if end_match and end_match.group().startswith("?"):
            continue  # rule "question": "So the answer is 18? Let me check." states nothing
        spans.append((match.start(), match.end(), end_match.start() if end_match else len(text), None))
    sentence_starts = None  # where each sentence of the text starts, found once for every "X is the answer"
    for match in _STATED_BEFORE.finditer(text, window_start):
        if text[_CLAUSE_END.search(text, match.end()).start():].startswith("?"):
            continue  # rule "question": "So, is the answer 18?" states nothing
        if sentence_starts is None:
            sentence_starts = [m.end() for m in _SENTENCE_START.finditer(text)]
        before = bisect.bisect_right(sentence_starts, match.start())
        sentence_start = sentence_starts[before - 1] if before else 0
        # rule "answer ends the sentence": X is the expression before "is", not the prose that leads to it
        answer = answer_of_sentence(text[sentence_start:match.start()])
        spans.append((match.start(), match.start() - len(answer), match.start(), match.end()))
    statements = []
    for phrase, answer_start, answer_end, end in sorted(spans):
        raw = text[answer_start:answer_end]
        answer_start += len(raw) - len(raw.lstrip())
        answer_end = answer_start + len(raw.strip().rstrip(".").strip())
        if end is None and _VERDICT_WORD.match(text[answer_start:answer_end]):
            continue  # rule "verdict word": "so our answer is correct" states no answer
        if any(character.isalnum() for character in text[answer_start:answer_end]):
            statements.append(Statement(phrase, phrase if end is None else answer_start,
                                        answer_end if end is None else end, answer_start, answer_end))
    return statements


def stated_answer(text: str) -> str | None:
    """The answer of the last final-answer statement (`find_statements`) in the last `STATED_WINDOW_CHARS`, or None."""
    statements = find_statements(text, max(0, len(text) - STATED_WINDOW_CHARS))
    return statements[-1].answer(text) if statements else None


@dataclass(frozen=True)
class ExplicitAnswer:
    """One answer of a text that the scorer reads as `boxed` or `stated` (see `explicit_answers`)."""

    source: str
    """`boxed` or `stated` (`EXPLICIT_SOURCES`)."""
    start: int
    """Index where it starts: the backslash of the box, or the statement's start."""
    end: int
    """Index just past it: past the box's closing brace, or past the statement (`Statement.end`)."""

    def text(self, text: str) -> str:
        """The box or statement alone (`text[start:end]`): scored on its own, it gives this answer."""
        return text[self.start:self.end]


def explicit_answers(text: str) -> list[ExplicitAnswer]:
    """Every box and final-answer statement of `text`, in the order they end (then start).

    Boxes are those `boxed_answer` can read (complete, non-empty), each on its own (not joined);
    statements are `find_statements` over the whole text (no window), except one whose X holds such
    a box (the scorer reads the box first, so the box is the answer). An unclosed box is no answer.
    """
    boxes = [box for box in find_boxes(text) if not is_empty_box_content(text[box.content_start:box.close])]
    found = [ExplicitAnswer("boxed", box.start, box.close + 1) for box in boxes]
    box_starts = [box.start for box in boxes]  # in order: boxes are found in the order they open
    for statement in find_statements(text):
        first = bisect.bisect_left(box_starts, statement.answer_start)
        if first == len(box_starts) or box_starts[first] >= statement.answer_end:
            found.append(ExplicitAnswer("stated", statement.start, statement.end))
    return sorted(found, key=lambda answer: (answer.end, answer.start))


_DISPLAY_CLOSERS = {"\\]": "\\[", "$$": "$$", "\\)": "\\("}
_DANGLING = re.compile(r"(?:=|\+|-|(?<!\*)\*|/|\\times|\\cdot|\\div|\(|,)\s*$")
_BOLD = re.compile(r"^\*\*(.+)\*\*$", re.DOTALL)


def last_complete_line(text: str) -> tuple[str | None, str]:
    """(the last complete line, the text up to its end) for the fallback.

    Lines are non-empty after stripping; a display block (`\\[ ... \\]`, `$$ ... $$`) counts as one
    line. A last line ending in an operator or `=` ("daps = 42 * (20/21) =") is unfinished: it is
    dropped, and the line before it is the last one. A line in bold (`**x = 42**`) is read without
    its `**` markers. None when no line is left.
    """
    lines = text.splitlines(keepends=True)
    ends, position = [], 0
    for line in lines:
        position += len(line)
        ends.append(position)
    index = len(lines) - 1
    while index >= 0:
        stripped = lines[index].strip()
        if not stripped:
            index -= 1
            continue
        if stripped in _DISPLAY_CLOSERS:
            opener = _DISPLAY_CLOSERS[stripped]
            first = index - 1
            while first >= 0 and lines[first].strip() != opener:
                first -= 1
            if first < 0:
                index -= 1
                continue
            block = "".join(lines[first:index + 1]).strip()
            return block, text[:ends[index]]
        bold = _BOLD.match(stripped)
        if bold:  # rule "bold last line": `**x = 42**` is the line `x = 42`, not a line ending in `*`
            stripped = bold.group(1).strip()
        if _DANGLING.search(stripped):
            index -= 1
            continue
        return stripped, text[:ends[index]]
    return None, ""


MAX_VERIFY_BOXES = 8
"""The most `\\boxed`/`\\fbox` openings of one text sent to math-verify (rule "bounded structure"): a
response looping on empty or unclosed boxes has hundreds, each a match math-verify's extraction tries."""

MAX_VERIFY_OPERATORS = 256
"""The most operators (`+ - * / ^ = _` and `\\frac`-like commands) of one text sent to math-verify."""

MAX_VERIFY_DEPTH = 24
"""The deepest nesting of `{ ( [` in one text sent to math-verify."""

_BOX_OPENING = re.compile(r"\\(?:boxed|fbox)\s*\{")
_OPERATOR = re.compile(r"[-+*/^=_]|\\(?:frac|dfrac|tfrac|sqrt|cdot|times|div)\b")


def _cut_points(text: str) -> list[int]:
    """Indices where `text` exceeds a structural bound, read from its start."""
    points = []
    boxes = [match.start() for match in _BOX_OPENING.finditer(text)]
    if len(boxes) > MAX_VERIFY_BOXES:
        points.append(boxes[MAX_VERIFY_BOXES])
    operators = [match.start() for match in _OPERATOR.finditer(text)]
    if len(operators) > MAX_VERIFY_OPERATORS:
        points.append(operators[MAX_VERIFY_OPERATORS])
    depth = 0
    for index, character in enumerate(text):
        if character in "{([":
            depth += 1
            if depth > MAX_VERIFY_DEPTH:
                points.append(index)
                break
        elif character in "})]":
            depth = max(0, depth - 1)
    return points


def cap_head(text: str) -> str:
    """`text` cut to its first `MAX_VERIFY_CHARS` characters (a box or a statement), and before the
    first point past a structural bound (`MAX_VERIFY_BOXES`, `MAX_VERIFY_OPERATORS`, `MAX_VERIFY_DEPTH`)."""
    text = text[:MAX_VERIFY_CHARS]
    points = _cut_points(text)
    return text[:min(points)] if points else text


def cap_tail(text: str) -> str:
    """`text` cut to its last `MAX_VERIFY_CHARS` characters (a fallback text), and after the last
    point past a structural bound, read from its end (the bounds of `cap_head`)."""
    text = text[-MAX_VERIFY_CHARS:]
    starts = [0]
    boxes = [match.start() for match in _BOX_OPENING.finditer(text)]
    if len(boxes) > MAX_VERIFY_BOXES:
        starts.append(boxes[-MAX_VERIFY_BOXES])
    operators = [match.end() for match in _OPERATOR.finditer(text)]
    if len(operators) > MAX_VERIFY_OPERATORS:
        starts.append(operators[-MAX_VERIFY_OPERATORS - 1])
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        if text[index] in "})]":
            depth += 1
            if depth > MAX_VERIFY_DEPTH:
                starts.append(index + 1)
                break
        elif text[index] in "{([":
            depth = max(0, depth - 1)
    return text[max(starts):]


def has_final_answer(text: str) -> bool:
    """True when `text` has a boxed or stated answer (the importer's sign that a response ended)."""
    return boxed_answer(text) is not None or stated_answer(text) is not None


_MATH_DELIMITER = re.compile(r"\$|\\\(|\\\[")
_COMMAND = re.compile(r"\\[A-Za-z]+(?:\s*\{[^{}]*\})?")
_TWO_WORDS = re.compile(r"\b[A-Za-z]{2,}'?[A-Za-z]*\s+[A-Za-z]{2,}\b")


def reads_as_prose(stated: str) -> bool:
    """True when a statement is a sentence to read an expression from ("I'm confident that 44",
    "$x = 3$ inches"), False when it is the expression itself (`2\\sqrt{3}`, `(1,2)`, `\\text{east}`)."""
    return bool(_MATH_DELIMITER.search(stated) or _TWO_WORDS.search(_COMMAND.sub(" ", stated)))


def accepts(policy: str, source: str, finished: bool | None) -> bool:
    """Whether `policy` lets an answer from `source` count for a response that `finished` (None: unknown)."""
    if source == "none":
        return False
    if source in EXPLICIT_SOURCES or policy == "lenient":
        return True
    return finished is not False


def check_policy(policy: str) -> str:
    """`policy` if it is an answer policy, else a `UserError` naming the choices."""
    if policy not in POLICIES:
        raise UserError(f"Answer policy {policy!r} is not one of {', '.join(POLICIES)}: pass --answer-policy strict or lenient.")
    return policy


# --- normalisation we own, before math-verify ---------------------------------------------------

_ORDINAL_LATEX = re.compile(
    r"(\d)\s*\^\s*(?:\{\s*)?\\(?:text|mathrm|textrm|rm)\s*\{\s*(?:st|nd|rd|th)\s*\}(?:\s*\})?"
    r"|(\d)\s*\^\s*\{\s*(?:st|nd|rd|th)\s*\}"
)
_ORDINAL_PLAIN = re.compile(r"(\d)(?:st|nd|rd|th)\b")
_TRAILING_WORDS = re.compile(r"(\d)\s*(?:\\(?:text|mathrm|textrm|mbox)\s*\{\s*[A-Za-z][A-Za-z ]*\}|\s+[A-Za-z][A-Za-z ]*)\s*$")
_DEGREE = re.compile(r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\degree|°)")
_DEGREE_IN_REFERENCE = re.compile(r"\\circ|\\degree|°")
_TEXT_WRAPPED = re.compile(r"^\\(?:text|textbf|textit|mathrm|mbox)\s*\{\s*([^{}]*?)\s*\}$")
_BARE_WORDS = re.compile(r"^(?=[A-Za-z ]*[a-z])[A-Za-z]{2,}(?: [A-Za-z]+)*$")  # a lower-case letter: not AB, ABC
_PLAIN_NUMBER = re.compile(r"^\$?\s*-?\d(?:[\d,{}]|\\[!,])*(?:\.\d+)?\s*\$?$")
_NUMBER_WORD = re.compile(r"^([A-Za-z]+(?:-[A-Za-z]+)?)(?:\s+[A-Za-z][A-Za-z ]*)?\.?$")


def normalise_answer(answer: str, reference: str, as_text: bool = True) -> str:
    """Our rules, applied to a box, statement or fallback line before math-verify reads it.

    - ordinal suffixes: `12^{\\text{th}}`, `12^{\\mathrm{th}}`, `3^{rd}`, `21st` -> the number;
    - trailing words after a number (`12\\text{ grade}`, `5 apples`) -> the number, when the
      reference is a plain number;
    - a number word, alone or with trailing words (`three boxes`, `\\text{twenty-one}`) -> the
      number, when the reference is a plain number (zero ... ninety-nine, `NUMBER_WORDS`); not for a
      fallback line (`as_text=False`: "One way is ..." is prose);
    - degree signs (`^{\\circ}`, `^\\circ`, `\\degree`, `°`) dropped when the reference has none;
    - a text-wrapped answer (`\\text{east}`, `\\textbf{east}`, `\\mathrm{east}`) or a bare word
      (`east`) is read as the text `\\text{east}`, so it compares as a word (math-verify reads a bare
      word as a product of symbols, under which anagrams are equal); not for a fallback line
      (`as_text=False`), which is prose, not an answer.
    """
    text = answer.strip()
    text = _ORDINAL_LATEX.sub(lambda m: m.group(1) or m.group(2), text)
    text = _ORDINAL_PLAIN.sub(r"\1", text)
    if not _DEGREE_IN_REFERENCE.search(reference):
        text = _DEGREE.sub("", text)
    if _PLAIN_NUMBER.match(reference.strip()):
        text = _TRAILING_WORDS.sub(r"\1", text)
        if as_text:
            text = _number_word(text)
    return _as_text(text) if as_text else text


def normalise_reference(reference: str) -> str:
    """The reference as math-verify should read it: a bare word becomes `\\text{word}` (see `normalise_answer`)."""
    return _as_text(reference.strip())


_NOT_A_UNIT = set(NUMBER_WORDS) | set(
    "hundred hundreds thousand thousands million millions billion billions trillion dozen dozens score half halves "
    "third thirds quarter quarters fourth fourths fifth fifths sixth sixths seventh sevenths eighth eighths ninth "
    "ninths tenth tenths and or to point over out times plus minus divided percent squared cubed".split())
"""Words after a number word that make it part of a larger number or expression ("ten thousand",
"two thirds", "three and a half", "one or two"): such an answer is left as it is."""


def _number_word(text: str) -> str:
    wrapped = _TEXT_WRAPPED.match(text)
    inner = wrapped.group(1) if wrapped else text
    match = _NUMBER_WORD.match(inner)
    if not match or match.group(1).lower() not in NUMBER_WORDS:
        return text
    following = inner[match.end(1):].split()
    if following and following[0].lower().rstrip(".") in _NOT_A_UNIT:
        return text
    return str(NUMBER_WORDS[match.group(1).lower()])


def _as_text(text: str) -> str:
    wrapped = _TEXT_WRAPPED.match(text)
    inner = wrapped.group(1) if wrapped else text
    if _BARE_WORDS.match(inner):
        return f"\\text{{{inner}}}"
    return text
