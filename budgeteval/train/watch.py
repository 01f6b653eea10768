"""`budgeteval watch`: follow verl's validation dumps and turn each training step into budget metrics.

verl with `trainer.validation_data_dir=DIR` writes one JSONL file per validation, `DIR/<step>.jsonl`,
one line per response: `input` (the decoded prompt), `output` (the decoded response), `gts` (the
ground truth; verl versions before it was added cannot be followed), `score`, `step`, plus the
reward function's extra values. For every step file not seen yet (or changed since), `watch`
imports the responses as a run directory `OUT/steps/step-<step>/` (`budgeteval.ingest.generations`:
responses re-tokenized with `--tokenizer`, a response of `--max-tokens` tokens counted as cut by the
limit, problems told apart by their prompt text), scores it at the budgets (`evaluate_run`) and
appends the step's metrics to `OUT/metrics_by_step.csv` (`budgeteval.report.steps`).
`OUT/watch.json` records the SHA-256 of every step file processed, so a restarted watch resumes and
a rewritten file is scored again. A file still being written (no final newline, or a line that is
not JSON) waits for the next poll. Never reads verl's own `score`.

Not here: plotting (`budgeteval plot OUT --by step`) or anything that talks to verl.
"""

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError
from budgeteval.train.judge import ground_truth_text

STEP_FILE = re.compile(r"^(\d+)\.jsonl$")
"""verl's validation dump names: `<global step>.jsonl`."""

STATE_FILE = "watch.json"
"""In OUT: step -> SHA-256 of the dump file processed for it."""


@dataclass(frozen=True)
class WatchConfig:
    """What `budgeteval watch` scores and how."""

    folder: Path
    """verl's `trainer.validation_data_dir`."""
    out: Path
    """Where step runs, `metrics_by_step.csv` and `watch.json` go."""
    task: str
    """budgeteval task the validation set is (name or YAML path): gives the scorer."""
    tokenizer: str
    """The policy's tokenizer (hub id or local path), to re-tokenize responses."""
    budgets: tuple[int, ...]
    """Budgets to score at."""
    max_tokens: int | None = None
    """verl's `data.max_response_length` (default: the largest budget)."""
    think_end: str | None = None
    """End-of-thinking marker; None: the tokenizer's own; '': plain answers."""
    data_files: dict = field(default_factory=dict)
    """Task name -> local data file (only needed for a task that is not a built-in)."""
    workers: int = 4
    """Scoring processes."""
    bootstrap: int = 0
    """Bootstrap resamples for confidence intervals (0: none)."""


def step_files(folder: Path) -> dict[int, Path]:
    """The dump files in `folder`, by training step."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: point watch at verl's trainer.validation_data_dir.")
    found = {}
    for path in folder.iterdir():
        match = STEP_FILE.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def read_dump(path: Path) -> pd.DataFrame | None:
    """One step's responses with the columns the importer needs; None while the file is still being written."""
    raw = path.read_bytes()
    if not raw or not raw.endswith(b"\n"):
        return None
    rows = []
    for line in raw.decode("utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            return None
    if not rows:
        return None
    for column in ("input", "output", "gts"):
        if column not in rows[0]:
            raise UserError(
                f"{path} has no {column!r} field: budgeteval reads verl validation dumps with input, output and gts "
                f"(verl versions that dump gts)."
            )
    frame = pd.DataFrame({
        "prompt": [str(row["input"]) for row in rows],
        "response": [str(row["output"]) for row in rows],
        "reference": [ground_truth_text(row["gts"]) for row in rows],
    })
    frame["problem_id"] = [hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16] for prompt in frame["prompt"]]
    return frame


def process_new_steps(config: WatchConfig, progress: bool = False,
                      report: Callable[[str], None] = lambda line: None,
                      on_step: Callable[[int, pd.DataFrame], None] | None = None) -> list[int]:
    """Score every step file not processed yet (or changed since); returns the steps scored.

    `on_step(step, metrics)`: called with each step's metrics once they are in metrics_by_step.csv
    (`watch --log` sends them to a tracker)."""
    from budgeteval.ingest.generations import import_frame
    from budgeteval.report.steps import append_step_metrics
    from budgeteval.scoring.evaluate import evaluate_run
    from budgeteval.scoring.metrics import read_metrics

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    state = _read_state(out)
    scored = []
    for step, path in step_files(config.folder).items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if state.get(str(step)) == digest:
            continue
        frame = read_dump(path)
        if frame is None:
            report(f"step {step}: {path.name} is still being written; trying again later")
            continue
        run_dir = out / "steps" / f"step-{step:08d}"
        import_frame(frame, path, config.task, config.tokenizer, run_dir,
                     {"problem_id": "problem_id", "response": "response", "reference": "reference", "prompt": "prompt"},
                     config.budgets, model=f"step {step}", max_tokens=config.max_tokens or max(config.budgets),
                     data_files=config.data_files, think_end=config.think_end, overwrite=True)
        evaluate_run(run_dir, budgets=config.budgets, workers=config.workers, progress=progress,
                     bootstrap=config.bootstrap)
        step_metrics = read_metrics(run_dir)
        append_step_metrics(out, step, step_metrics)
        if on_step is not None:
            on_step(step, step_metrics)
        state[str(step)] = digest
        _write_state(out, state)
        scored.append(step)
        report(f"step {step}: {len(frame)} responses to {frame['problem_id'].nunique()} problems scored at "
               f"{len(config.budgets)} budgets")
    return scored


def watch(config: WatchConfig, once: bool = False, interval_s: float = 60.0, progress: bool = False,
          report: Callable[[str], None] = lambda line: None, max_polls: int | None = None,
          on_step: Callable[[int, pd.DataFrame], None] | None = None) -> list[int]:
    """Process new steps now and then every `interval_s` seconds (once: a single pass); returns the steps scored.
    `on_step`: as for `process_new_steps`."""
    from budgeteval.rundir.lock import lock_run

    scored: list[int] = []
    polls = 0
    # One watcher per output folder: a second one would score the same steps into the same runs.
    with lock_run(Path(config.out), "watch"):
        while True:
            scored += process_new_steps(config, progress=progress, report=report, on_step=on_step)
            polls += 1
            if once or (max_polls is not None and polls >= max_polls):
                return scored
            time.sleep(interval_s)


def _read_state(out: Path) -> dict:
    path = out / STATE_FILE
    if not path.is_file():
        return {}
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, TypeError):
        raise UserError(f"{path} is not a watch state file: remove it to score every step again.") from None


def _write_state(out: Path, state: dict) -> None:
    ordered = dict(sorted(state.items(), key=lambda item: int(item[0])))
    write_text_atomic(out / STATE_FILE, json.dumps(ordered, indent=2) + "\n")

