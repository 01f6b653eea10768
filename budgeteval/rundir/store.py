"""The generation store: every sampled response of a run, with its token ids, as parquet shards.

Four kinds of store share one mechanism (`StoreKind`):
- `generations/<task>/part-*.parquet`: the max-budget responses, one row per (problem_id, sample_idx);
- `continuations/<task>/...`: forced-mode answers, one row per (problem_id, sample_idx, budget);
- `conditioned/<task>/...`: conditioned-mode responses, one row per (problem_id, sample_idx, budget);
- `engine/<task>/...`: engine-mode responses (the engine's thinking budget), one row per (problem_id, sample_idx, budget).
Shards are written atomically and only ever added, and a unit of work (a problem's n samples, or
a problem at one budget) always lands in one shard, so a run killed at any moment resumes from the
units already stored without losing or duplicating a sample. Scoring reads from here, never from
a model.
"""

from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from budgeteval.atomic import write_atomic
from budgeteval.errors import UserError
from budgeteval.rundir.layout import STORE_DIRS

STORE_FORMAT_VERSION = 1
"""On-disk format of generation shards; a reader refuses shards written by a newer format."""


@dataclass(frozen=True)
class GenerationRecord:
    """One sampled response, as stored."""

    task: str
    """Task name."""
    problem_id: str
    """Problem id within the task."""
    sample_idx: int
    """Index of the sample among the problem's n samples (0-based)."""
    prompt: str
    """The full prompt text the model saw (chat template applied)."""
    prompt_num_tokens: int
    """Number of prompt tokens."""
    token_ids: tuple[int, ...]
    """Response token ids, including a final end-of-sequence token when the model stopped."""
    text: str
    """Response text as the backend decoded it (kept as is; replay decodes from token ids)."""
    finish_reason: str
    """`stop` or `length`."""
    seed: int
    """The per-request seed of the problem's request."""
    max_tokens: int
    """Token limit the response was generated with: the sweep's largest budget (for a
    `ConditionedRecord`, the conditioned-mode limit, `--conditioned-max-tokens`)."""
    model: str
    """Model id or path."""
    backend: str
    """Backend name that produced the response."""


SCHEMA = pa.schema([
    ("task", pa.string()),
    ("problem_id", pa.string()),
    ("sample_idx", pa.int32()),
    ("prompt", pa.string()),
    ("prompt_num_tokens", pa.int32()),
    ("token_ids", pa.list_(pa.int32())),
    ("text", pa.string()),
    ("finish_reason", pa.string()),
    ("seed", pa.int64()),
    ("max_tokens", pa.int32()),
    ("model", pa.string()),
    ("backend", pa.string()),
], metadata={"budgeteval_store_format": str(STORE_FORMAT_VERSION)})



@dataclass(frozen=True)
class ContinuationRecord:
    """A forced-mode answer: what the model wrote after its first `budget` tokens plus the forcing string."""

    task: str
    """Task name."""
    problem_id: str
    """Problem id within the task."""
    sample_idx: int
    """The sample of the max-budget generation this continues."""
    budget: int
    """The thinking budget B: the continuation starts after the sample's first B response tokens."""
    continued: bool
    """False when the sample finished within B: nothing was generated and the sample is used as it is."""
    force_token_ids: tuple[int, ...]
    """Ids appended after the first B tokens (the forcing string; empty when thinking had already ended)."""
    force_string: str
    """The forcing string as configured (recorded for traceability)."""
    token_ids: tuple[int, ...]
    """The newly generated answer token ids (at most `max_tokens`)."""
    text: str
    """The answer text as the backend decoded it."""
    finish_reason: str
    """`stop` or `length` of the continuation (`stop` when not continued)."""
    seed: int
    """Seed of the continuation request."""
    max_tokens: int
    """Answer-token limit A the continuation was generated with."""


@dataclass(frozen=True)
class ConditionedRecord(GenerationRecord):
    """A conditioned-mode response: generated from a prompt that names the budget."""

    budget: int
    """The budget rendered into the prompt."""


@dataclass(frozen=True)
class EngineRecord(GenerationRecord):
    """An engine-mode response: generated with the engine's own thinking budget set to `budget`."""

    budget: int
    """The thinking budget B the engine was given (vLLM's `thinking_token_budget`)."""


CONTINUATION_SCHEMA = pa.schema([
    ("task", pa.string()),
    ("problem_id", pa.string()),
    ("sample_idx", pa.int32()),
    ("budget", pa.int64()),
    ("continued", pa.bool_()),
    ("force_token_ids", pa.list_(pa.int32())),
    ("force_string", pa.string()),
    ("token_ids", pa.list_(pa.int32())),
    ("text", pa.string()),
    ("finish_reason", pa.string()),
    ("seed", pa.int64()),
    ("max_tokens", pa.int32()),
], metadata=SCHEMA.metadata)

CONDITIONED_SCHEMA = SCHEMA.append(pa.field("budget", pa.int64())).with_metadata(SCHEMA.metadata)


@dataclass(frozen=True)
class StoreKind:
    """One kind of append-only parquet store inside a run directory."""

    folder: str
    """Folder under the run directory (`generations`, `continuations`, `conditioned`)."""
    record: type
    """The frozen dataclass a row is written from."""
    schema: pa.Schema
    """Column names and types, in the record's field order."""
    unit: tuple[str, ...]
    """Columns naming a unit of work: a unit's rows are always written in one shard."""
    key: tuple[str, ...]
    """Columns unique per row."""


GENERATIONS = StoreKind("generations", GenerationRecord, SCHEMA, ("problem_id",), ("problem_id", "sample_idx"))
CONTINUATIONS = StoreKind("continuations", ContinuationRecord, CONTINUATION_SCHEMA, ("problem_id", "budget"),
                          ("problem_id", "sample_idx", "budget"))
CONDITIONED = StoreKind("conditioned", ConditionedRecord, CONDITIONED_SCHEMA, ("problem_id", "budget"),
                        ("problem_id", "sample_idx", "budget"))
ENGINE = StoreKind("engine", EngineRecord, CONDITIONED_SCHEMA, ("problem_id", "budget"),
                   ("problem_id", "sample_idx", "budget"))

assert tuple(kind.folder for kind in (GENERATIONS, CONTINUATIONS, CONDITIONED, ENGINE)) == STORE_DIRS
for _kind in (GENERATIONS, CONTINUATIONS, CONDITIONED, ENGINE):
    assert [field.name for field in fields(_kind.record)] == _kind.schema.names, \
        f"{_kind.record.__name__} and its schema must list the same columns in order"


def store_dir(run_dir: Path, kind: StoreKind = GENERATIONS) -> Path:
    """Folder of one store kind (`RUN/generations/`, ...), a subfolder per task."""
    return Path(run_dir) / kind.folder


def task_dir(run_dir: Path, task: str, kind: StoreKind = GENERATIONS) -> Path:
    """Folder holding one task's shards of one store kind."""
    return store_dir(run_dir, kind) / task


def shard_paths(run_dir: Path, task: str, kind: StoreKind = GENERATIONS) -> list[Path]:
    """One task's shard files of one store kind, in the order they were written."""
    return sorted(task_dir(run_dir, task, kind).glob("part-*.parquet"))


_shard_paths = shard_paths


def write_shard(run_dir: Path, task: str, records: Iterable, kind: StoreKind = GENERATIONS) -> Path:
    """Append one shard of complete units of work to the task's store, atomically."""
    records = list(records)
    if not records:
        raise ValueError("write_shard needs at least one record")
    # Column by column with plain attribute reads: `dataclasses.asdict` deep-copies every token id
    # (about 11 us per token, seconds per shard of long responses).
    columns = {field.name: [getattr(record, field.name) for record in records] for field in fields(records[0])}
    existing = _shard_paths(run_dir, task, kind)
    next_index = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
    path = task_dir(run_dir, task, kind) / f"part-{next_index:05d}.parquet"
    table = pa.Table.from_pydict(columns, schema=kind.schema)
    write_atomic(path, lambda temp: pq.write_table(table, temp))
    return path


def _check_format(path: Path, schema: pa.Schema) -> None:
    version = int((schema.metadata or {}).get(b"budgeteval_store_format", b"1"))
    if version > STORE_FORMAT_VERSION:
        raise UserError(
            f"Shard {path} was written by a newer budgeteval (store format {version} > "
            f"{STORE_FORMAT_VERSION}): upgrade budgeteval to read it."
        )


def read_task(run_dir: Path, task: str, columns: list[str] | None = None,
              kind: StoreKind = GENERATIONS) -> pa.Table:
    """All stored rows of one task in one store kind, checked for duplicate keys."""
    tables = []
    for path in _shard_paths(run_dir, task, kind):
        try:
            table = pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowInvalid) as error:
            raise UserError(f"Generation shard {path} cannot be read ({error}); remove it and resume the run.") from None
        _check_format(path, table.schema)
        tables.append(table.replace_schema_metadata(None))
    if not tables:
        return kind.schema.empty_table().replace_schema_metadata(None).select(columns or kind.schema.names)
    table = pa.concat_tables(tables)
    if all(column in table.column_names for column in kind.key):
        keys = list(zip(*(table.column(column).to_pylist() for column in kind.key)))
        if len(keys) != len(set(keys)):
            raise UserError(f"The {kind.folder} store of task {task} in {run_dir} holds duplicate samples (two "
                            f"runs wrote it at once, or shards were copied in): run `budgeteval repair {run_dir}`, "
                            f"which keeps one copy of each.")
    return table


def repair_task(run_dir: Path, task: str, kind: StoreKind = GENERATIONS) -> int:
    """Keep one copy of each duplicated row of one task's store; returns the copies removed.

    Refuses (a `UserError`) when two copies of a row differ: which one is right cannot be told.
    The unique rows are written as one new shard before the old shards are removed, so a kill in
    between leaves identical duplicates, which running the repair again removes.
    """
    paths = _shard_paths(run_dir, task, kind)
    rows, origin = {}, {}
    duplicates = 0
    for path in paths:
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as error:
            raise UserError(f"Generation shard {path} cannot be read ({error}); remove it and resume the run.") from None
        _check_format(path, table.schema)
        for row in table.to_pylist():
            key = tuple(row[column] for column in kind.key)
            if key not in rows:
                rows[key], origin[key] = row, path
            elif rows[key] != row:
                raise UserError(f"{origin[key]} and {path} hold different samples for {dict(zip(kind.key, key))} "
                                f"of task {task}: repair keeps identical copies only; remove the wrong shard by hand, "
                                f"or re-run with --overwrite.")
            else:
                duplicates += 1
    if not duplicates:
        return 0
    write_shard(run_dir, task, [kind.record(**row) for row in rows.values()], kind=kind)
    for path in paths:
        path.unlink()
    return duplicates


def stored_units(run_dir: Path, task: str, kind: StoreKind) -> set[tuple]:
    """Units of work already stored (tuples of `kind.unit` values; a shard holds whole units)."""
    table = read_task(run_dir, task, columns=list(kind.unit), kind=kind)
    return set(zip(*(table.column(column).to_pylist() for column in kind.unit)))


def stored_problem_ids(run_dir: Path, task: str) -> set[str]:
    """Problems whose samples are already stored (a shard always holds whole problems)."""
    return {problem_id for (problem_id,) in stored_units(run_dir, task, GENERATIONS)}


def stored_tasks(run_dir: Path) -> list[str]:
    """Tasks with a generations folder in the run."""
    root = store_dir(run_dir)
    return sorted(path.name for path in root.iterdir() if path.is_dir()) if root.is_dir() else []

