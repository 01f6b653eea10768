"""Turn existing generations (any JSONL/parquet, one row per sample) into a run directory.

Columns are mapped with `--field NAME=COLUMN`; token ids come from re-tokenizing the response
with the model's tokenizer. The result is a normal run directory, so `score`, `report`,
`compare` and `plot` treat it exactly like a native run. It does not call any model. When the
file holds no references (no `reference` column, by that name or mapped), they come from the
task's data, and the problems are stored with the task's groups (MATH-500 `level`, ...) as `run`
stores them; with references from the file the task's data is not read, so the run has no groups.

Why a response ended (`finish_reason` of the store), first rule that applies:

1. a mapped finish-reason column (`--field finish_reason=COL`), in any spelling of
   `FINISH_REASON_SPELLINGS` (vLLM/OpenAI `stop`/`length`, TGI `eos_token`, Gemini `MAX_TOKENS`,
   SGLang's `{"type": "length"}`, ...); an empty cell falls through to the next rules;
2. with `--max-tokens M`: `length` when the re-tokenized response has at least M tokens, or at least
   (1 - `--cut-tolerance`) x M tokens with no end-of-sequence token in its text and no boxed or
   stated final answer (re-tokenizing undercounts: responses cut at 32,768 generated tokens
   re-tokenize to as few as 32,467); otherwise `stop`;
3. otherwise, with `--unfinished-text cut` (the default): `length` when the text visibly stops
   mid-sentence, i.e. ends (after trailing whitespace) with none of `. ! ? ) ] } $ * >` and no
   closing `\\]`, and holds no end-of-sequence token ("... and then multiply both sides by");
4. otherwise `unknown`: the response may have stopped or been cut; its truncation rate is not
   known (the report prints n/a) and the answer policies count it as finished. With
   `--unfinished-text unknown`, rule 3 is off and every such response is `unknown`.

The rule 3 setting is recorded in the manifest's `generation` fingerprint (`unfinished_text`).
"""

import hashlib
import json
import numbers
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.config import RunConfig
from budgeteval.generation.tokenizer import load_tokenizer
from budgeteval.rundir.layout import save_tokenizer
from budgeteval.rundir.lock import lock_run
from budgeteval.rundir.manifest import (
    Manifest,
    hardware,
    now_utc,
    open_run,
    package_versions,
    task_entry,
    write_manifest,
)
from budgeteval.rundir.problems import write_problems
from budgeteval.rundir.store import GenerationRecord, stored_problem_ids, write_shard
from budgeteval.scoring.answers import has_final_answer
from budgeteval.scoring.replay import UNKNOWN_FINISH
from budgeteval.tasks.loading import Problem, group_task_options, load_problems, load_task
from budgeteval.tasks.prompts import default_think_end

IMPORT_FIELDS = {
    "problem_id": "problem id (required)",
    "response": "model response text (required)",
    "sample_idx": "sample index within the problem (default: order of appearance)",
    "reference": "reference answer (default: from the task's dataset)",
    "question": "problem statement (default: from the task's dataset)",
    "prompt": "full prompt text (default: empty)",
    "finish_reason": "why the response ended: stop/length in vLLM, OpenAI, TGI, SGLang or Gemini spelling "
                     "(default: from --max-tokens, else unknown)",
}
"""Names `--field` accepts, with what each maps."""

FINISH_REASON_SPELLINGS = {
    "stop": "stop", "eos": "stop", "eos_token": "stop", "stop_sequence": "stop", "stop_token": "stop",
    "end_turn": "stop", "finished": "stop", "complete": "stop", "completed": "stop",
    "length": "length", "max_tokens": "length", "max_length": "length", "max_new_tokens": "length",
    "max_output_tokens": "length", "model_length": "length", "truncated": "length",
}
"""Finish reasons `import` reads (case-insensitive) -> the store's `stop` (the model ended it) or `length` (cut).
vLLM and OpenAI write stop/length, TGI eos_token/stop_sequence/length, Anthropic end_turn/max_tokens,
Gemini STOP/MAX_TOKENS, SGLang a dict whose `type` is one of these."""

DEFAULT_CUT_TOLERANCE = 0.02
"""`--cut-tolerance`: how far under `--max-tokens` a re-tokenized response may fall and still count as
cut when it shows no sign of ending (measured: 32,768 generated tokens re-tokenize to as few as 32,467,
0.9% fewer; 2% leaves room for other tokenizer round trips)."""


def finish_reason_of(value, path: Path) -> str | None:
    """The store's finish reason for one cell of a finish-reason column; None for an empty cell."""
    if isinstance(value, dict):
        value = value.get("type", value.get("finish_reason"))
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    spelled = FINISH_REASON_SPELLINGS.get(str(value).strip().lower())
    if spelled is None:
        raise UserError(
            f"{path} has finish reason {value!r}, which budgeteval does not know; map a column holding one of "
            f"{', '.join(sorted(FINISH_REASON_SPELLINGS))} with --field finish_reason=COLUMN, or drop the mapping."
        )
    return spelled


UNFINISHED_TEXT_CHOICES = ("cut", "unknown")
"""`--unfinished-text`: whether a response of unknown finish whose text stops mid-sentence counts as
cut (`cut`, rule 3 of the module docstring) or stays unknown (`unknown`)."""

DEFAULT_UNFINISHED_TEXT = "cut"

_TEXT_END = (".", "!", "?", ")", "]", "}", "$", "*", ">", "\\]")


def ends_unfinished(text: str) -> bool:
    """True when `text` ends (after trailing whitespace) without a sentence or expression end (rule 3)."""
    stripped = text.rstrip()
    return bool(stripped) and not stripped.endswith(_TEXT_END)


def inferred_finish_reason(text: str, num_tokens: int, max_tokens: int | None, tolerance: float,
                           eos_strings: Sequence[str], unfinished_text: str = DEFAULT_UNFINISHED_TEXT) -> str:
    """Rules 2 to 4 of the module docstring, for a response without a stated finish reason."""
    if max_tokens is None:
        if (unfinished_text == "cut" and ends_unfinished(text)
                and not any(eos and eos in text for eos in eos_strings)):
            return "length"
        return UNKNOWN_FINISH
    if num_tokens >= max_tokens:
        return "length"
    if num_tokens >= (1 - tolerance) * max_tokens:
        ended = any(eos and eos in text for eos in eos_strings) or has_final_answer(text)
        return "stop" if ended else "length"
    return "stop"


def read_table(path: Path) -> pd.DataFrame:
    """Read a JSONL or parquet file of generations."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"Generations file {path} does not exist.")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, OSError) as error:
        raise UserError(f"Cannot read {path} as {'parquet' if path.suffix == '.parquet' else 'JSONL'}: {error}.") from None


def parse_field_map(pairs: Sequence[str]) -> dict[str, str]:
    """Parse `--field NAME=COLUMN` options."""
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not column:
            raise UserError(f"--field {pair!r} must look like NAME=COLUMN, e.g. response=output.")
        if name not in IMPORT_FIELDS:
            raise UserError(f"--field {name!r} is not a field budgeteval imports; use one of {', '.join(IMPORT_FIELDS)}.")
        mapping[name] = column
    return mapping


def import_generations(path: Path, task_name: str, tokenizer_name: str, out: Path, field_map: dict[str, str],
                       budgets: Sequence[int], model: str | None = None, max_tokens: int | None = None,
                       data_files: dict[str, str] | None = None, think_end: str | None = None,
                       overwrite: bool = False, task_options: Sequence[tuple[str, str, str]] = (),
                       cut_tolerance: float = DEFAULT_CUT_TOLERANCE,
                       unfinished_text: str = DEFAULT_UNFINISHED_TEXT) -> Path:
    """Write a run directory holding the file's generations; score it with `evaluate_run`."""
    return import_frame(read_table(path), path, task_name, tokenizer_name, out, field_map, budgets, model=model,
                        max_tokens=max_tokens, data_files=data_files, think_end=think_end, overwrite=overwrite,
                        task_options=task_options, cut_tolerance=cut_tolerance, unfinished_text=unfinished_text)


def import_frame(frame: pd.DataFrame, path: Path, task_name: str, tokenizer_name: str, out: Path,
                 field_map: dict[str, str], budgets: Sequence[int], model: str | None = None,
                 max_tokens: int | None = None, data_files: dict[str, str] | None = None,
                 think_end: str | None = None, overwrite: bool = False,
                 task_options: Sequence[tuple[str, str, str]] = (),
                 cut_tolerance: float = DEFAULT_CUT_TOLERANCE,
                 unfinished_text: str = DEFAULT_UNFINISHED_TEXT) -> Path:
    """`import_generations` for generations already read into `frame` from the file at `path`.

    `path` names the source in messages and in the run's fingerprint (`budgeteval watch` reads
    verl's dumps itself and adds the columns they lack).
    """
    columns = {name: field_map.get(name, name) for name in IMPORT_FIELDS}
    for required in ("problem_id", "response"):
        if columns[required] not in frame.columns:
            raise UserError(
                f"{path} has no column {columns[required]!r} for {required}; map one with --field {required}=COLUMN "
                f"(columns: {', '.join(map(str, frame.columns))})."
            )
    _check_keys(frame, columns, path)
    options = group_task_options(task_options)
    task = load_task(task_name, data_files, options)
    if set(options) - {task.name}:
        raise UserError(f"--task-option names task(s) other than {task.name}: {', '.join(sorted(set(options) - {task.name}))}.")
    if not 0 <= cut_tolerance < 1:
        raise UserError(f"--cut-tolerance {cut_tolerance} must be a fraction in [0, 1), e.g. 0.02 for 2%.")
    if unfinished_text not in UNFINISHED_TEXT_CHOICES:
        raise UserError(f"--unfinished-text {unfinished_text!r}: use one of {', '.join(UNFINISHED_TEXT_CHOICES)}.")
    tokenizer = load_tokenizer(tokenizer_name)
    stated_max_tokens = max_tokens
    max_tokens = max_tokens or max(budgets)
    eos_strings = [token for token in {tokenizer.eos_token, tokenizer.pad_token} if token]

    known = _known_problems(frame, columns, task, path)
    out = Path(out)

    records, counters = [], defaultdict(int)
    responses = frame[columns["response"]].fillna("").astype(str).tolist()
    encoded = tokenizer(responses, add_special_tokens=False)["input_ids"]
    for row_index, (row, token_ids) in enumerate(zip(frame.itertuples(index=False, name=None), encoded)):
        record_values = dict(zip(frame.columns, row))
        problem_id = str(record_values[columns["problem_id"]])
        if columns["sample_idx"] in frame.columns:
            sample_idx = int(record_values[columns["sample_idx"]])
        else:
            sample_idx = counters[problem_id]
            counters[problem_id] += 1
        finish_reason = None
        if columns["finish_reason"] in frame.columns:
            finish_reason = finish_reason_of(record_values[columns["finish_reason"]], path)
        if finish_reason is None:
            finish_reason = inferred_finish_reason(responses[row_index], len(token_ids), stated_max_tokens,
                                                   cut_tolerance, eos_strings, unfinished_text)
        records.append(GenerationRecord(
            task=task.name, problem_id=problem_id, sample_idx=sample_idx,
            prompt=str(record_values.get(columns["prompt"], "") or ""), prompt_num_tokens=0,
            token_ids=tuple(token_ids), text=responses[row_index], finish_reason=finish_reason,
            seed=-1, max_tokens=max_tokens, model=model or tokenizer_name, backend="import",
        ))
    sample_counts = defaultdict(int)
    for record in records:
        sample_counts[record.problem_id] += 1
    keys = [(record.problem_id, record.sample_idx) for record in records]
    if len(keys) != len(set(keys)):
        raise UserError(f"{path} repeats a (problem_id, sample_idx) pair; map a unique sample index with --field sample_idx=COLUMN.")

    problems = [problem for problem_id, problem in known.items() if problem_id in sample_counts]
    config = RunConfig(model=model or tokenizer_name, tasks=(task.name,), out=str(out), backend="import",
                       tokenizer=tokenizer_name, n=max(sample_counts.values()), budgets=tuple(budgets),
                       task_options=tuple(task_options))
    fingerprint = {"imported_from": str(Path(path).resolve()), "task": task.name, "tokenizer": tokenizer_name,
                   "fields": columns, "max_tokens": max_tokens, "max_tokens_stated": stated_max_tokens is not None,
                   "cut_tolerance": cut_tolerance, "unfinished_text": unfinished_text, "responses_sha256": _records_hash(records)}
    with lock_run(out, "import"):
        # Re-importing the same file into its own run resumes it: a kill at any point of an import
        # (or of the scoring after it) leaves a directory the same command completes.
        if open_run(out, fingerprint, overwrite) is None:
            write_manifest(out, Manifest(
                kind="import", config=config, tasks={task.name: task_entry(task, problems)}, generation=fingerprint,
                created=now_utc(), think_end=default_think_end(tokenizer) if think_end is None else (think_end or None),
                packages=package_versions(), hardware=hardware()))
        save_tokenizer(out, tokenizer)
        # With the task's groups, as `run` stores them, so `report --by GROUP` works on an import too.
        write_problems(out, task.name, [
            {"problem_id": problem.problem_id, "question": problem.question, "reference": problem.reference,
             **problem.groups}
            for problem in problems
        ])
        # One shard holds the whole import, so it is there completely or not at all.
        if not stored_problem_ids(out, task.name):
            write_shard(out, task.name, records)
    return out


def _records_hash(records: list) -> str:
    """Content hash of the imported samples (a changed file under the same name is a different import)."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record.problem_id, record.sample_idx, record.text, record.finish_reason]).encode())
    return digest.hexdigest()


def _check_keys(frame: pd.DataFrame, columns: dict, path: Path) -> None:
    """Refuse rows without a problem id, or with a sample index that is not a whole number >= 0."""
    ids = frame[columns["problem_id"]]
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        row = int(blank.to_numpy().nonzero()[0][0])
        raise UserError(f"{path} row {row + 1} has no problem id in column {columns['problem_id']!r} "
                        f"({int(blank.sum())} row(s) in all): give every row one, or map another column with "
                        f"--field problem_id=COLUMN.")
    if columns["sample_idx"] not in frame.columns:
        return
    for row, value in enumerate(frame[columns["sample_idx"]]):
        whole = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and value == value
                 and float(value).is_integer() and value >= 0)
        if not whole:
            raise UserError(f"{path} row {row + 1} has sample index {value!r} in column {columns['sample_idx']!r}: "
                            f"every row needs a whole number >= 0 there (or leave --field sample_idx out to number "
                            f"samples in order).")


def _known_problems(frame: pd.DataFrame, columns: dict, task, path: Path) -> dict[str, Problem]:
    """problem_id -> its `Problem`: question and reference from the file when its reference is mapped
    (no groups then: the task's data is not read), else from the task's data, with the task's groups."""
    ids = frame[columns["problem_id"]].astype(str)
    if columns["reference"] in frame.columns:
        questions = frame[columns["question"]].astype(str) if columns["question"] in frame.columns else pd.Series([""] * len(frame))
        references = frame[columns["reference"]].astype(str)
        return {pid: Problem(problem_id=pid, question=question, reference=reference, prompt_fields={})
                for pid, question, reference in zip(ids, questions, references)}
    problems = {problem.problem_id: problem for problem in load_problems(task)}
    missing = sorted(set(ids) - set(problems))
    if missing:
        raise UserError(
            f"{path} has problem ids not in task {task.name}: {', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''}; map the right column with --field problem_id=COLUMN "
            f"or give references with --field reference=COLUMN."
        )
    return {pid: Problem(problem_id=pid, question=problems[pid].question, reference=problems[pid].reference,
                         prompt_fields={}, groups=problems[pid].groups) for pid in dict.fromkeys(ids)}
