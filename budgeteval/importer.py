"""Turn existing generations (any JSONL/parquet, one row per sample) into a run directory.

Columns are mapped with `--field NAME=COLUMN`; token ids come from re-tokenizing the response
with the model's tokenizer. The result is a normal run directory, so `score`, `report`,
`compare` and `plot` treat it exactly like a native run. It does not call any model.
"""

from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from budgeteval.config import RunConfig
from budgeteval.errors import UserError
from budgeteval.prompts import default_think_end
from budgeteval.run_dir import (Manifest, hardware, now_utc, open_run, package_versions, task_entry, tokenizer_dir,
                                write_manifest)
from budgeteval.store import GenerationRecord, write_problems, write_shard
from budgeteval.tasks import Problem, group_task_options, load_problems, load_task
from budgeteval.tokenizer import load_tokenizer

IMPORT_FIELDS = {
    "problem_id": "problem id (required)",
    "response": "model response text (required)",
    "sample_idx": "sample index within the problem (default: order of appearance)",
    "reference": "reference answer (default: from the task's dataset)",
    "question": "problem statement (default: from the task's dataset)",
    "prompt": "full prompt text (default: empty)",
    "finish_reason": "stop/length (default: length if the response reaches --max-tokens, else stop)",
}
"""Names `--field` accepts, with what each maps."""


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
                       budgets: Sequence[int], model: Optional[str] = None, max_tokens: Optional[int] = None,
                       data_files: Optional[dict[str, str]] = None, think_end: Optional[str] = None,
                       overwrite: bool = False, task_options: Sequence[tuple[str, str, str]] = ()) -> Path:
    """Write a run directory holding the file's generations; score it with `evaluate_run`."""
    return import_frame(read_table(path), path, task_name, tokenizer_name, out, field_map, budgets, model=model,
                        max_tokens=max_tokens, data_files=data_files, think_end=think_end, overwrite=overwrite,
                        task_options=task_options)


def import_frame(frame: pd.DataFrame, path: Path, task_name: str, tokenizer_name: str, out: Path,
                 field_map: dict[str, str], budgets: Sequence[int], model: Optional[str] = None,
                 max_tokens: Optional[int] = None, data_files: Optional[dict[str, str]] = None,
                 think_end: Optional[str] = None, overwrite: bool = False,
                 task_options: Sequence[tuple[str, str, str]] = ()) -> Path:
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
    options = group_task_options(task_options)
    task = load_task(task_name, data_files, options)
    if set(options) - {task.name}:
        raise UserError(f"--task-option names task(s) other than {task.name}: {', '.join(sorted(set(options) - {task.name}))}.")
    tokenizer = load_tokenizer(tokenizer_name)
    max_tokens = max_tokens or max(budgets)

    references = _references(frame, columns, task, path)
    out = Path(out)
    fingerprint = {"imported_from": str(Path(path).resolve()), "task": task.name, "tokenizer": tokenizer_name,
                   "fields": columns, "max_tokens": max_tokens}
    if open_run(out, fingerprint, overwrite) is not None:
        raise UserError(f"{out} already holds this import: pass --overwrite to import it again.")

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
        if columns["finish_reason"] in frame.columns:
            finish_reason = "length" if str(record_values[columns["finish_reason"]]) == "length" else "stop"
        else:
            finish_reason = "length" if len(token_ids) >= max_tokens else "stop"
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

    tokenizer.save_pretrained(str(tokenizer_dir(out)))
    problems = [Problem(problem_id=problem_id, question=question, reference=reference, prompt_fields={})
                for problem_id, (question, reference) in references.items() if problem_id in sample_counts]
    write_problems(out, task.name, [
        {"problem_id": problem.problem_id, "question": problem.question, "reference": problem.reference}
        for problem in problems
    ])
    write_shard(out, task.name, records)
    config = RunConfig(model=model or tokenizer_name, tasks=(task.name,), out=str(out), backend="import",
                       tokenizer=tokenizer_name, n=max(sample_counts.values()), budgets=tuple(budgets),
                       task_options=tuple(task_options))
    write_manifest(out, Manifest(
        kind="import", config=config, tasks={task.name: task_entry(task, problems)}, generation=fingerprint,
        created=now_utc(), think_end=default_think_end(tokenizer) if think_end is None else (think_end or None),
        packages=package_versions(), hardware=hardware()))
    return out


def _references(frame: pd.DataFrame, columns: dict, task, path: Path) -> dict[str, tuple[str, str]]:
    """problem_id -> (question, reference), from the file when mapped, else from the task's data."""
    ids = frame[columns["problem_id"]].astype(str)
    if columns["reference"] in frame.columns:
        questions = frame[columns["question"]].astype(str) if columns["question"] in frame.columns else pd.Series([""] * len(frame))
        references = frame[columns["reference"]].astype(str)
        return {pid: (question, reference) for pid, question, reference in zip(ids, questions, references)}
    problems = {problem.problem_id: problem for problem in load_problems(task)}
    missing = sorted(set(ids) - set(problems))
    if missing:
        raise UserError(
            f"{path} has problem ids not in task {task.name}: {', '.join(missing[:3])}"
            f"{' …' if len(missing) > 3 else ''}; map the right column with --field problem_id=COLUMN "
            f"or give references with --field reference=COLUMN."
        )
    return {pid: (problems[pid].question, problems[pid].reference) for pid in dict.fromkeys(ids)}
