"""Runs and training curves as experiment-tracker runs: Weights & Biases and Trackio.

One tracker run per budgeteval run (`log_run`): its config is the manifest; every metric of
`metrics.csv` (whatever metrics it holds) as a table, and as curves with the budget on the x axis
(`curves/<task>/<mode>/<metric>`, x = `budget`); the budget figures as images. A training run
followed by `watch` is one tracker run whose steps carry the per-step metrics under the keys the
TRL callback logs (`budget/<task>/<B>/<metric>`, `budgeteval.train.trl.metrics_to_logs`), at the
training step. The trackers' own settings apply: `WANDB_MODE=offline` writes a local W&B run,
Trackio keeps its projects in its local store (`TRACKIO_DIR`) unless told to use a Space.
Not here: the Hub dataset (`budgeteval.publish.hub`).
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from budgeteval.errors import UserError

TRACKERS = {
    "wandb": "budgeteval.publish.trackers:WandbRun",
    "trackio": "budgeteval.publish.trackers:TrackioRun",
}
"""Tracker name -> the class that opens one of its runs ("module:attr")."""

CURVE_PREFIX = "curves"
"""Keys of the budget curves: `curves/<task>/<mode>/<metric>`, against `budget`."""
TABLE_KEY = "budget_metrics"
"""Key of the metrics table."""
FIGURE_PREFIX = "figures"
"""Keys of the figures: `figures/<name>`."""


@dataclass(frozen=True)
class Destination:
    """Where `--log`/`--to` sends runs."""

    tracker: str
    """A key of `TRACKERS`."""
    project: str
    """The tracker's project."""
    name: str | None = None
    """The tracker run's name (default: the budgeteval run's label)."""


def parse_destination(text: str, option: str = "--log") -> Destination:
    """`wandb:PROJECT` or `trackio:PROJECT` -> a `Destination`."""
    tracker, sep, project = str(text).partition(":")
    if not sep or tracker not in TRACKERS or not project:
        raise UserError(f"{option} {text!r} must look like TRACKER:PROJECT with TRACKER one of "
                        f"{', '.join(TRACKERS)}, e.g. wandb:my-project.")
    return Destination(tracker, project)


def check_destination(destination: Destination) -> Destination:
    """Refuse an unknown tracker, or one whose package is not installed, before any work."""
    if destination.tracker not in TRACKERS:
        raise UserError(f"--to {destination.tracker!r} is not a tracker: use {', '.join(TRACKERS)}.")
    if not destination.project:
        raise UserError("--project is empty: name the tracker project to log to.")
    try:
        importlib.import_module(destination.tracker)
    except ImportError:
        raise UserError(f"Logging to {destination.tracker} needs its package: pip install 'budgeteval[track]'.") \
            from None
    return destination


def open_run(destination: Destination, name: str, config: Mapping):
    """Start a tracker run (a `WandbRun` or `TrackioRun`) named `name` with `config`."""
    module, _, attribute = TRACKERS[destination.tracker].partition(":")
    opener = getattr(importlib.import_module(module), attribute)
    try:
        return opener(destination.project, name, dict(config))
    except Exception as error:  # the tracker's own: no login, no network, a bad project name
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"Starting a {destination.tracker} run in project {destination.project} failed ({reason}): "
                        f"log in to the tracker, or log offline (WANDB_MODE=offline; Trackio's local store).") from None


class WandbRun:
    """One W&B run (`wandb.init(..., reinit="create_new")`; offline with WANDB_MODE=offline)."""

    def __init__(self, project: str, name: str, config: dict):
        import wandb

        self._wandb = wandb
        self._run = wandb.init(project=project, name=name, config=config, reinit="create_new",
                               settings=wandb.Settings(console="off", x_disable_stats=True, silent=True))
        self._curves_defined = False

    def log_curves(self, rows: Sequence[dict]) -> None:
        """Rows that each hold `budget` and the curve values at that budget."""
        if not self._curves_defined:
            self._run.define_metric("budget")
            self._run.define_metric(f"{CURVE_PREFIX}/*", step_metric="budget")
            self._curves_defined = True
        for row in rows:
            self._run.log(row)

    def log_step(self, values: dict, step: int) -> None:
        self._run.log(values, step=step)

    def log_table(self, key: str, frame) -> None:
        self._run.log({key: self._wandb.Table(dataframe=frame)})

    def log_images(self, images: Mapping[str, Path]) -> None:
        self._run.log({key: self._wandb.Image(str(path)) for key, path in images.items()})

    def finish(self) -> None:
        self._run.finish()
        # Stop wandb's service now: left to wandb's atexit, it finds the service already ended by our
        # exit sweep and prints a "Connection lost" traceback after a successful log.
        self._wandb.teardown()


class TrackioRun:
    """One Trackio run (its local store unless a Space or server is configured); curves use the budget as the step."""

    def __init__(self, project: str, name: str, config: dict):
        import trackio

        self._trackio = trackio
        self._run = trackio.init(project=project, name=name, config=config, embed=False, auto_log_cpu=False,
                                 auto_log_gpu=False, capture_console=False)

    def log_curves(self, rows: Sequence[dict]) -> None:
        for row in rows:
            values = dict(row)
            step = int(values.pop("budget"))
            self._run.log(values, step=step)

    def log_step(self, values: dict, step: int) -> None:
        self._run.log(values, step=step)

    def log_table(self, key: str, frame) -> None:
        self._run.log({key: self._trackio.Table(dataframe=frame)})

    def log_images(self, images: Mapping[str, Path]) -> None:
        self._run.log({key: self._trackio.Image(str(path)) for key, path in images.items()})

    def finish(self) -> None:
        self._run.finish()


# ---- what is logged ------------------------------------------------------------------------------


def metric_name(metric: str, k: int | None) -> str:
    """`mean` at k=8 -> `mean@8`; a k-free metric (k None) keeps its name."""
    return metric if k is None else f"{metric}@{int(k)}"


def curve_rows(metrics) -> list[dict]:
    """The metrics table as one row per budget: `budget` and `curves/<task>/<mode>/<metric>` values."""
    import pandas as pd

    rows: dict[int, dict] = {}
    for row in metrics.itertuples(index=False):
        if pd.isna(row.value):
            continue
        key = f"{CURVE_PREFIX}/{row.task}/{row.mode}/{metric_name(row.metric, None if pd.isna(row.k) else row.k)}"
        rows.setdefault(int(row.budget), {"budget": int(row.budget)})[key] = float(row.value)
    return [rows[budget] for budget in sorted(rows)]


def run_config(run) -> dict:
    """The tracker config of a budgeteval run: its manifest, plus its label and path."""
    return {"budgeteval_run": run.label, "run_dir": str(run.path), **run.manifest.to_json()}


def log_run(run, destination: Destination) -> str:
    """Log one budgeteval run (a loaded `Run`) as one tracker run; returns the tracker run's name."""
    from budgeteval.plots.budget import PlotOptions, budget_figures
    from budgeteval.plots.style import save_figure

    name = destination.name or run.label
    metrics = run.metrics
    figures = budget_figures([run], PlotOptions())
    tracker_run = open_run(destination, name, run_config(run))
    try:
        tracker_run.log_curves(curve_rows(metrics))
        tracker_run.log_table(TABLE_KEY, metrics.astype(object).where(metrics.notna(), None))
        with tempfile.TemporaryDirectory(prefix="budgeteval-figures-") as folder:
            paths = {f"{FIGURE_PREFIX}/{figure}": save_figure(drawn, Path(folder) / f"{figure}.png")
                     for figure, drawn in figures.items()}
            tracker_run.log_images(paths)
    finally:
        tracker_run.finish()
        import matplotlib.pyplot as plt

        for drawn in figures.values():
            plt.close(drawn)
    return name


def log_runs(runs: Sequence, destination: Destination) -> list[str]:
    """`budgeteval log`: one tracker run per budgeteval run (named `--name`, or `NAME-<label>` for several)."""
    check_destination(destination)
    names = []
    for run in runs:
        name = destination.name if len(runs) == 1 else (
            f"{destination.name}-{run.label}" if destination.name else None)
        names.append(log_run(run, Destination(destination.tracker, destination.project, name)))
    return names


def watch_config(config) -> dict:
    """The tracker config of a `watch` (`budgeteval.train.watch.WatchConfig`), as plain JSON values."""
    import dataclasses
    import json

    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


class StepLogger:
    """The tracker run of a `watch`: each scored step's metrics at that step, as the TRL callback logs them."""

    def __init__(self, destination: Destination, config: Mapping):
        check_destination(destination)
        self._run = open_run(destination, destination.name or Path(str(config.get("out", "watch"))).name, config)

    def __call__(self, step: int, metrics) -> None:
        from budgeteval.train.trl import metrics_to_logs

        self._run.log_step(metrics_to_logs(metrics), step=int(step))

    def close(self) -> None:
        self._run.finish()
