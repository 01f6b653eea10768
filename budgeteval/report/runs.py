"""A finished run directory as pandas frames: the Python API under `compare`, `plot` and notebooks.

`load_run(path)` reads the manifest at once (so a path that is not a run fails early) and every
other file only when it is first asked for: `scores.parquet`, `metrics.csv`, `problems/` and
`generations/` (the largest). Everything comes from the run directory's files alone, never from a
model, tokenizer or dataset. Comparing runs is `budgeteval.report.compare`; figures are
`budgeteval.plots.budget`. This module writes nothing.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from budgeteval.errors import UserError
from budgeteval.rundir.manifest import Manifest, read_manifest

if TYPE_CHECKING:  # imported lazily where used: compare and plots pull in more than a loader needs

    from budgeteval.report.compare import Comparison


@dataclass(frozen=True)
class Run:
    """One run directory, its label, and its files as pandas frames (read on first access, then kept)."""

    path: Path
    """The run directory."""
    label: str
    """Name of the run in tables and legends (default: the basename of the manifest's model)."""
    manifest: Manifest = dataclasses.field(repr=False, compare=False)
    """`manifest.json` (`budgeteval.rundir.manifest.Manifest`)."""

    @cached_property
    def scores(self) -> pd.DataFrame:
        """`scores.parquet`: one row per task x problem x sample x budget x mode."""
        from budgeteval.rundir.scores import read_scores

        return read_scores(self.path)

    @cached_property
    def metrics(self) -> pd.DataFrame:
        """`metrics.csv` (long format, with bootstrap intervals where they were computed)."""
        from budgeteval.scoring.metrics import read_metrics

        return read_metrics(self.path)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """`problems/<task>.parquet` of every task: task, problem_id, question, reference, then the
        group columns any task declares (empty for the problems of tasks without that group)."""
        from budgeteval.rundir.problems import read_problem_frame
        from budgeteval.tasks.loading import BASE_PROBLEM_COLUMNS

        base = list(BASE_PROBLEM_COLUMNS)
        table = pd.concat([read_problem_frame(self.path, task).assign(task=task) for task in self.tasks],
                          ignore_index=True)
        return table[["task"] + base + [column for column in table.columns if column not in base + ["task"]]]

    @cached_property
    def generations(self) -> pd.DataFrame:
        """`generations/` of every task: one row per sampled response, token ids included."""
        from budgeteval.rundir.store import read_task, stored_tasks

        tables = [read_task(self.path, task).to_pandas() for task in stored_tasks(self.path)]
        if not tables:
            raise UserError(f"{self.path} holds no generations/ (only its scores and metrics were kept).")
        return pd.concat(tables, ignore_index=True)

    @cached_property
    def profile(self) -> pd.DataFrame:
        """Per-problem budget profile: pass rate, solved, solved_from, lost (`budgeteval.report.profile`)."""
        from budgeteval.report.profile import profile_from_scores

        return profile_from_scores(self.scores)

    @property
    def tasks(self) -> list[str]:
        """Task names, as the manifest lists them."""
        return list(self.manifest.tasks)

    @property
    def model(self) -> str:
        """The model id or path the run evaluated (from the manifest)."""
        return self.manifest.model

    def with_label(self, label: str) -> Run:
        """The same run under another label (files already read are read again when asked for)."""
        if not label:
            raise UserError(f"The label of run {self.path} is empty: write RUN=label with a non-empty label.")
        return dataclasses.replace(self, label=label)

    def metrics_at(self, ks: Sequence[int]) -> pd.DataFrame:
        """Metrics with mean@k, pass@k and maj@k for exactly `ks` (and all k-free metrics).

        Taken from `metrics.csv` when it holds every k asked for; otherwise computed from
        `scores.parquet` with the bootstrap settings the run was scored with, which gives the same
        numbers `budgeteval score` would have written.
        """
        from budgeteval.rundir.layout import metrics_paths
        from budgeteval.scoring.metrics import compute_metrics

        ks = sorted({int(k) for k in ks})
        if metrics_paths(self.path)[0].is_file():
            metrics = self.metrics
            available = {int(k) for k in metrics["k"].dropna()}
            if set(ks) <= available:
                keep = metrics["k"].isna() | metrics["k"].isin(ks)
                return metrics[keep.astype(bool)].reset_index(drop=True)
        scoring = self.manifest.scoring
        return compute_metrics(self.scores, ks, bootstrap=scoring.bootstrap if scoring else 0,
                               seed=scoring.bootstrap_seed if scoring else 0)

    def compare(self, *others: Run, k: int | None = None, params: dict | float | None = None) -> Comparison:
        """Compare `others` against this run as the baseline (see `budgeteval.report.compare.compare_runs`;
        `params`: parameter counts in billions for ACU, one number or run label -> number)."""
        from budgeteval.report.compare import compare_runs

        return compare_runs([self, *others], baseline=self.label, k=k, params=params)


def scored_think_end(manifest: Manifest) -> str | None:
    """The end-of-thinking marker a run's answers were read after: the one it was scored with, else the
    model's (a run not yet scored); None for plain answers."""
    think_end = manifest.scoring.think_end if manifest.scoring is not None else manifest.think_end
    return think_end or None


def default_label(manifest: Manifest, path: Path) -> str:
    """The basename of the manifest's model (`Qwen/Qwen3-1.7B` -> `Qwen3-1.7B`), else the directory name."""
    model = str(manifest.model or "").rstrip("/\\")
    return os.path.basename(model) or model or Path(path).resolve().name


def load_run(path: str | os.PathLike, label: str | None = None, kind: type[Run] = Run) -> Run:
    """Open the run directory at `path` (a `UserError` if it is not one), labelled `label` or by default.

    `kind` is the class made: `budgeteval.api.Run` adds the later stages' views (figures)."""
    path = Path(path)
    manifest = read_manifest(path)
    run = kind(path=path, label=default_label(manifest, path), manifest=manifest)
    return run if label is None else run.with_label(label)


def parse_run_argument(text: str) -> tuple[Path, str | None]:
    """Split a command-line run `RUN` or `RUN=label` into the path and the label (None: the default).

    An existing directory whose name contains `=` is taken as a path; otherwise the text after the
    last `=` is the label.
    """
    if "=" not in text or Path(text).is_dir():
        return Path(text), None
    path, _, label = text.rpartition("=")
    if not path or not label:
        raise UserError(f"{text!r} must be a run directory, optionally followed by =label (runs/base=Base).")
    return Path(path), label


def load_runs(arguments: Sequence[str], kind: type[Run] = Run) -> list[Run]:
    """Load the runs named on a command line (`RUN` or `RUN=label`), refusing two runs with one label."""
    from budgeteval.report.compare import check_unique_labels

    runs = [load_run(path, label, kind) for path, label in map(parse_run_argument, arguments)]
    check_unique_labels(runs)
    return runs


def resolve_label(runs: Sequence[Run], name: str, flag: str = "--baseline") -> str:
    """The label of the run that `name` (given to `flag`) names (a label, or a run directory path)."""
    for run in runs:
        if run.label == name:
            return run.label
    for run in runs:
        if Path(name).resolve() == Path(run.path).resolve():
            return run.label
    raise UserError(f"{flag} {name!r} is none of the runs given ({', '.join(run.label for run in runs)}).")
