"""Where things are in a run directory: its file and folder names and the paths built from them.

Only the `rundir` package spells these names; every other stage asks for a path.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from budgeteval.atomic import is_leftover, replace_dir

MANIFEST_NAME = "manifest.json"
SCORES_NAME = "scores.parquet"
METRICS_CSV_NAME = "metrics.csv"
METRICS_JSON_NAME = "metrics.json"
TOKENIZER_DIR = "tokenizer"
PROBLEMS_DIR = "problems"
VERDICTS_DIR = "verdicts"
"""The run's verdict cache (`budgeteval.scoring.verdict_cache`): verdicts already reached, by answer key."""
LOCK_NAME = ".budgeteval.lock"
"""The write lock's file (`lock_run`); it stays after its holder exits, unlocked."""
STORE_DIRS = ("generations", "continuations", "conditioned", "engine")
"""Folders of the four generation stores (`budgeteval.rundir.store`)."""

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


def foreign_entries(run_dir: Path) -> list[Path]:
    """What `run_dir` holds besides the lock file and the temp leftovers of killed writers."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(path for path in run_dir.iterdir() if path.name != LOCK_NAME and not is_leftover(path))


def save_tokenizer(run_dir: Path, tokenizer) -> None:
    """Write `RUN/tokenizer/` as one step (a kill leaves the old folder, none, or the new one)."""
    replace_dir(tokenizer_dir(run_dir), lambda temp: tokenizer.save_pretrained(str(temp)))


def clear_run(run_dir: Path) -> None:
    """Remove everything budgeteval wrote into `run_dir` (what --overwrite discards)."""
    for name in RUN_OUTPUTS + (MANIFEST_NAME,):
        target = Path(run_dir) / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
