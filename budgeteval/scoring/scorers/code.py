"""Code scorer (LiveCodeBench): run the response's program against the problem's tests.

What is judged. The program is the content of the last complete fenced code block of the answer
region (a block is opened by a line starting with three or more backticks, optionally followed by
a language tag, and closed by a line of at least as many backticks alone; an unclosed block, as a
response cut at a budget leaves it, does not count). With balanced fences this is what
LiveCodeBench's `extract_code` returns (the text between the last two fence lines,
lcb_runner/utils/extraction_utils.py); no complete block means no program, scored wrong.

How. Each test runs in a fresh sandboxed process (`budgeteval.scoring.sandbox`; never in this process)
with LiveCodeBench's import preamble (`from collections import *` and friends,
`sys.setrecursionlimit(50000)`, as lcb_runner/evaluation/testing_util.py `import_string`), tests in
dataset order (public, then private), stopping at the first failing test. The comparison follows
testing_util.py:
- stdin problems: the program runs as a script with the test input on stdin. Its stdout and the
  expected output are each stripped, split on newlines and every line stripped; the line counts must
  agree and each line must be equal, or else split on whitespace into numbers that are equal as
  `Decimal`s (so `0.50` equals `0.5`, but there is no tolerance: `0.3333` is not `0.33333`).
  A `SystemExit` ends the program normally, as in LCB.
- functional problems (LeetCode, `fn_name` in the metadata): `Solution().<fn_name>` (or a top-level
  function of that name) is called with one argument per input line, each parsed as JSON; the
  return value (a returned tuple becomes a list, nothing deeper) must `==` the JSON-parsed expected
  output. The value crosses from the sandbox as JSON and is compared here, so a program cannot
  report its own verdict.

Verdicts: passed, wrong_answer (output limit included), runtime_error, time_limit, memory_limit,
sandbox_error (the sandbox failed; logged, counted wrong). Default per-test limits: 6 CPU seconds
(LCB's per-test timeout), 12 s wall clock, 4 GiB address space (LCB itself sets none).
`Verdict.extracted` is `<verdict>:<sha256 of the program, 12 hex>`, so majority voting counts
identical programs together and `scores.parquet` shows why each answer failed.

Each distinct (problem, program) is run once across samples and budgets; distinct programs run in
parallel on `workers` threads, each waiting on its own sandboxed processes.

References. A task's reference for this scorer is built at load time by `build_reference` from
the dataset's test columns (the `code_tests` reference builder): LiveCodeBench stores public tests
as JSON and private tests as base64(zlib(pickle(JSON))). Pickles are decoded without unrestricted
unpickling: only the opcodes that make str, bytes, list and dict are accepted, no global is ever
resolved, and the result must be made of those types; decompression is capped. A row that cannot
be decoded stops loading with an error naming the problem.
"""

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import logging
import os
import pickle
import pickletools
import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from budgeteval.errors import UnjudgeableProblem, UserError
from budgeteval.scoring.scorers.base import DistinctJobs, ProgressCallback, ScoreItem, Verdict
from budgeteval.scoring.verdict_cache import cache_key

logger = logging.getLogger(__name__)

ProgramVerdict = Literal["passed", "wrong_answer", "runtime_error", "time_limit", "memory_limit", "sandbox_error"]
"""How one program did on a problem's tests."""
UNCACHED_VERDICTS = frozenset({"time_limit", "sandbox_error"})
"""Program verdicts never kept in the verdict cache: a time limit depends on the machine's load,
a sandbox failure says nothing about the program."""
SCORER_VERSION = 1
"""Bump when a change could change verdicts (it starts a new verdict-cache namespace)."""

REFERENCE_FORMAT = "budgeteval-code-tests/1"
"""`format` of the JSON references `build_reference` writes and `parse_reference` reads."""
DEFAULT_WORKERS = min(4, os.cpu_count() or 1)
MAX_DECODED_BYTES = 1024**3
"""Largest decompressed private-test payload accepted for one problem."""

LCB_PRELUDE = """\
from string import *
from re import *
from datetime import *
from collections import *
from heapq import *
from bisect import *
from copy import *
from math import *
from random import *
from statistics import *
from itertools import *
from functools import *
from operator import *
from io import *
from sys import *
from json import *
from builtins import *
from typing import *
import string
import re
import datetime
import collections
import heapq
import bisect
import copy
import math
import random
import statistics
import itertools
import functools
import operator
import io
import sys
import json
sys.setrecursionlimit(50000)
"""
"""Names every LiveCodeBench program may use without importing them (same modules as LCB's
`import_string`, which its grader puts in front of every program)."""

_FENCE = re.compile(r"^[ \t]*(`{3,})")


# --- extraction ---------------------------------------------------------------------------------


def extract_code(answer_text: str | None) -> str | None:
    """The content of the last complete fenced code block of `answer_text`, or None."""
    if answer_text is None:
        return None
    last = None
    opening: str | None = None
    lines: list[str] = []
    for line in answer_text.split("\n"):
        fence = _FENCE.match(line)
        if opening is None:
            if fence:
                opening, lines = fence.group(1), []
        elif fence and line.strip() == fence.group(1) and len(fence.group(1)) >= len(opening):
            last, opening = "\n".join(lines), None
        else:
            lines.append(line)
    return last


# --- references: built at load time, read at scoring time --------------------------------------


@dataclass(frozen=True)
class TestCase:
    """One test of a problem."""

    input: str
    """stdin text (stdin mode) or one JSON argument per line (functional mode)."""
    output: str
    """Expected stdout (stdin mode) or the JSON of the expected return value (functional mode)."""


@dataclass(frozen=True)
class CodeTests:
    """Everything needed to judge programs for one problem (the parsed reference)."""

    mode: Literal["stdin", "functional"]
    """stdin: run as a script; functional: call `fn_name`."""
    fn_name: str | None
    """The method of `Solution` (or function) functional tests call."""
    platform: str | None
    """Where the problem comes from (atcoder, codeforces, leetcode); informational."""
    tests: tuple[TestCase, ...]
    """Public tests first, then private ones, as LiveCodeBench orders them."""


_PICKLE_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "GET",
    "BINGET", "LONG_BINGET", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES",
    "SHORT_BINBYTES", "BINBYTES8", "EMPTY_LIST", "APPEND", "APPENDS", "LIST", "EMPTY_DICT", "DICT", "SETITEM",
    "SETITEMS",
})
"""The pickle opcodes that only build str, bytes, list and dict (no globals, calls or objects)."""


class _NoGlobalsUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def _check_plain(value: Any, depth: int = 0) -> None:
    if depth > 100:
        raise ValueError("nested too deeply")
    if isinstance(value, (str, bytes)):
        return
    if isinstance(value, list):
        for item in value:
            _check_plain(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, depth + 1)
            _check_plain(item, depth + 1)
        return
    raise ValueError(f"a {type(value).__name__} is not allowed")


def restricted_unpickle(data: bytes) -> Any:
    """Unpickle data made only of str, bytes, list and dict; anything else raises ValueError."""
    refused = None
    try:
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name not in _PICKLE_OPCODES:
                refused = opcode.name
                break
    except ValueError as error:
        raise ValueError(f"invalid pickle ({error})") from None
    if refused is not None:
        raise ValueError(f"pickle opcode {refused} is not allowed")
    try:
        value = _NoGlobalsUnpickler(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, IndexError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"invalid pickle ({error})") from None
    _check_plain(value)
    return value


def _inflate(raw: bytes) -> bytes:
    inflater = zlib.decompressobj()
    data = inflater.decompress(raw, MAX_DECODED_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"it decompresses to more than {MAX_DECODED_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("the zlib stream is truncated")
    return data


def decode_test_cases(value: Any) -> list[TestCase]:
    """Tests from a dataset cell: a JSON list, or base64(zlib(pickle(JSON or list))); ValueError if neither."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                raise ValueError(f"invalid JSON ({error.msg} at {error.pos})") from None
        else:
            try:
                raw = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("neither JSON nor base64") from None
            try:
                inflated = _inflate(raw)
            except zlib.error as error:
                raise ValueError(f"not zlib data ({error})") from None
            value = restricted_unpickle(inflated)
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as error:
                    raise ValueError(f"the unpickled text is not JSON ({error.msg})") from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"expected a list of tests, got {type(value).__name__}")
    tests = []
    for index, test in enumerate(value):
        if not isinstance(test, dict) or not isinstance(test.get("input"), str) or not isinstance(test.get("output"), str):
            raise ValueError(f"test {index} is not an object with string 'input' and 'output'")
        tests.append(TestCase(test["input"], test["output"]))
    return tests


def build_reference(values: dict[str, Any], problem_id: str) -> str:
    """The `code_tests` reference builder: test columns of one dataset row -> a JSON reference.

    `values` maps `public_tests`, `private_tests` (either may be empty), `metadata` (JSON with an
    optional `func_name`, which makes the problem functional) and optionally `platform` to the row's
    cells, as the task YAML's `reference.columns` names them.
    """
    unknown = set(values) - {"public_tests", "private_tests", "metadata", "platform"}
    if unknown:
        raise UserError(f"The code_tests reference builder takes public_tests, private_tests, metadata and platform, "
                        f"not {', '.join(sorted(unknown))}: fix the task's reference.columns.")
    tests = []
    for name in ("public_tests", "private_tests"):
        try:
            tests += decode_test_cases(values.get(name))
        except ValueError as error:
            raise UserError(f"Problem {problem_id}: its {name} cannot be decoded ({error}); "
                            f"the data file is damaged or not in LiveCodeBench's format.") from None
    if not tests:
        raise UnjudgeableProblem(problem_id, "has no test cases (public and private tests are empty), so no answer "
                                             "to it can be judged")
    metadata = values.get("metadata") or {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata) if metadata.strip() else {}
        except json.JSONDecodeError:
            raise UserError(f"Problem {problem_id}: its metadata is not JSON ({metadata[:60]!r}).") from None
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    platform = values.get("platform")
    return json.dumps({
        "format": REFERENCE_FORMAT,
        "mode": "functional" if fn_name else "stdin",
        "fn_name": fn_name or None,
        "platform": str(platform) if platform else None,
        "tests": [{"input": test.input, "output": test.output} for test in tests],
    }, ensure_ascii=False, separators=(",", ":"))


def parse_reference(reference: str, problem_id: str = "?") -> CodeTests:
    """Read a reference written by `build_reference`."""
    try:
        data = json.loads(reference)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("format") != REFERENCE_FORMAT:
        raise UserError(f"The reference of problem {problem_id} is not a code-tests reference ({reference[:60]!r}); "
                        f"a code task must build its reference with the code_tests builder.")
    return CodeTests(mode=data["mode"], fn_name=data["fn_name"], platform=data.get("platform"),
                     tests=tuple(TestCase(test["input"], test["output"]) for test in data["tests"]))


# --- comparison (LiveCodeBench's rules) -----------------------------------------------------------


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except (InvalidOperation, ValueError):
        return None


def stdout_matches(actual: str, expected: str) -> bool:
    """LCB's stdin/stdout check: same number of stripped lines, each equal as text or as numbers."""
    actual_lines, expected_lines = _stripped_lines(actual), _stripped_lines(expected)
    if len(actual_lines) != len(expected_lines):
        return False
    for got, want in zip(actual_lines, expected_lines):
        if got == want:
            continue
        got_numbers, want_numbers = _decimals(got), _decimals(want)
        if got_numbers is None or want_numbers is None or got_numbers != want_numbers:
            return False
    return True


def return_value_matches(result_json: str | None, expected_output: str) -> bool:
    """LCB's functional check: the returned value (as the sandbox reported it) == json.loads(expected)."""
    if result_json is None:
        return False
    result = json.loads(result_json)
    if "value" not in result:
        return False  # a value JSON cannot carry (set, nested tuple, object): never equal to JSON
    return result["value"] == json.loads(expected_output)


# --- judging --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramResult:
    """How one program did on one problem."""

    verdict: ProgramVerdict
    """passed, or why the first failing test failed."""
    tests_run: int
    """Tests run (the last one is the failing one unless passed)."""
    detail: str
    """A short reason (which test, the error's last line); empty when passed."""


def judge_program(code: str, tests: CodeTests, sandbox, limits) -> ProgramResult:
    """Run `code` on the tests in order until one fails."""
    function = tests.fn_name if tests.mode == "functional" else None
    for index, test in enumerate(tests.tests):
        outcome = sandbox.run_python(code, test.input.encode("utf-8"), limits=limits, prelude=LCB_PRELUDE,
                                     function=function)
        where = f"test {index + 1} of {len(tests.tests)}"
        if outcome.status == "ok":
            if function is None:
                passed = stdout_matches(outcome.stdout.decode("utf-8", errors="replace"), test.output)
            else:
                passed = return_value_matches(outcome.result, test.output)
            if passed:
                continue
            return ProgramResult("wrong_answer", index + 1, f"{where}: wrong answer")
        if outcome.status == "output_limit":
            return ProgramResult("wrong_answer", index + 1, f"{where}: output limit")
        last_line = (outcome.stderr_tail.strip().splitlines() or [""])[-1][:200]
        return ProgramResult(outcome.status, index + 1, f"{where}: {outcome.status} {last_line}".strip())
    return ProgramResult("passed", len(tests.tests), "")


def _program_key(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()[:12]


def score_batch(
    items: Sequence[ScoreItem],
    *,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressCallback = None,
    limits=None,
    sandbox=None,
    answer_policy: str | None = None,
    verdict_cache=None,
) -> list[Verdict]:
    """One verdict per item, in order; each distinct (problem reference, program) runs once.

    `verdict_cache` (a `budgeteval.scoring.verdict_cache.VerdictCache`): programs it knows for the problem do
    not run again; what runs is added, except `UNCACHED_VERDICTS` (load-dependent or not a verdict).

    `limits` (a `budgeteval.scoring.sandbox.SandboxLimits`) defaults to the module docstring's values;
    `sandbox` defaults to the machine's best backend (see `budgeteval.scoring.sandbox`). `answer_policy`
    is accepted for the common signature and unused: a program is a complete fenced block or
    nothing, never a fallback reading (its verdicts have no answer source).
    """
    del answer_policy
    from budgeteval.scoring.sandbox import SandboxLimits, default_sandbox

    limits = limits or SandboxLimits()
    def job_of(item: ScoreItem):
        code = extract_code(item.answer_text)
        if code is None or not code.strip():
            return None
        return (item.reference, code), (item.problem_id, item.reference, code)

    folded = DistinctJobs.fold(items, job_of)
    folded.report_unanswered(progress)
    jobs = folded.jobs
    view = verdict_cache.view(cache_namespace(limits)) if verdict_cache is not None else None
    digests: dict[str, str] = {}
    stored_keys = []
    if view is not None:
        for _, reference, code in jobs:
            if reference not in digests:  # a test spec can be megabytes: hashed once per problem
                digests[reference] = hashlib.sha256(reference.encode("utf-8")).hexdigest()
            stored_keys.append(cache_key(digests[reference], code))
    verdicts: list[Verdict | None] = [None] * len(jobs)
    to_run = []
    for index in range(len(jobs)):
        cached = view.get(stored_keys[index]) if view is not None else None
        if cached is None:
            to_run.append(index)
            continue
        verdicts[index] = cached
        if progress is not None:
            progress(folded.items_of_job[index])
    if to_run:
        sandbox = sandbox or default_sandbox()
    parsed: dict[str, CodeTests] = {}
    for index in to_run:
        problem_id, reference, _ = jobs[index]
        if reference not in parsed:
            parsed[reference] = parse_reference(reference, problem_id)

    results: dict[int, ProgramResult] = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = {pool.submit(judge_program, jobs[index][2], parsed[jobs[index][1]], sandbox, limits): index
                       for index in to_run}
            try:
                for future in as_completed(futures):
                    index = futures[future]
                    result = results[index] = future.result()
                    verdicts[index] = Verdict(f"{result.verdict}:{_program_key(jobs[index][2])}",
                                              result.verdict == "passed")
                    if view is not None and result.verdict not in UNCACHED_VERDICTS:
                        view.put(stored_keys[index], verdicts[index])
                    if progress is not None:
                        progress(folded.items_of_job[index])
            except BaseException:
                # Ctrl-C or SIGTERM (budgeteval.processes): drop the programs not started yet instead of
                # running them all before the interrupt can propagate.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        if view is not None:
            view.flush()

    failures = [(jobs[i][0], r.detail) for i, r in sorted(results.items()) if r.verdict == "sandbox_error"]
    if failures:
        logger.warning("the sandbox failed on %d program(s), counted wrong; first: problem %s, %s",
                       len(failures), *failures[0])
    return folded.spread(verdicts)


def cache_namespace(limits) -> str:
    """The verdict-cache namespace of this scorer (`budgeteval.scoring.verdict_cache`): its version and the
    sandbox limits (a verdict under other limits may differ)."""
    settings = json.dumps(dataclasses.asdict(limits), sort_keys=True, separators=(",", ":"))
    return f"code/v{SCORER_VERSION}/limits={settings}"
