"""Compare two budget modes of one run, sample by sample: do they give the same answers, and how far
apart are their accuracies?

The question engine mode raises (docs/budgets.md): `forced` replays the engine's thinking budget from
one generation; does it measure what the engine's own budget (`engine`) measures? Both modes share
the same problems, samples and seeds, so they are compared pairwise per task x budget:

- `agreement`: share of the samples whose extracted answers are equal in both modes (two missing
  answers count as agreeing: neither mode answered);
- `mean_a`, `mean_b`: accuracy of each mode (mean over problems of the fraction of samples correct);
- `delta` = `mean_b` - `mean_a`, with a paired percentile-bootstrap interval over problems: the
  per-problem differences resampled with `budgeteval.scoring.metrics.resample_counts`, the same
  resamples the run's own intervals use.

Reads the scores table only (nothing is re-scored); draws no figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget
from budgeteval.report.cells import markdown_row, percent
from budgeteval.scoring.metrics import DEFAULT_BOOTSTRAP, bootstrap_interval, resample_counts

MODE_COMPARISON_COLUMNS = ("task", "budget", "mode_a", "mode_b", "problems", "samples", "agreement", "mean_a",
                           "mean_b", "delta", "delta_ci_low", "delta_ci_high")
"""Columns of `ModeComparison.table` (fractions, not percent)."""


@dataclass(frozen=True)
class ModeComparison:
    """Two modes of one run compared per task x budget."""

    run: str
    """The run directory compared."""
    mode_a: str
    """The reference mode (e.g. `forced`)."""
    mode_b: str
    """The mode compared with it (e.g. `engine`); `delta` is b - a."""
    table: pd.DataFrame
    """One row per task x budget, `MODE_COMPARISON_COLUMNS`."""

    def format(self, fmt: str = "markdown") -> str:
        """The table as markdown (percent) or CSV (fractions)."""
        if fmt == "csv":
            return self.table.to_csv(index=False)
        if fmt != "markdown":
            raise UserError(f"--format {fmt} is not available with --modes: use markdown or csv.")
        lines = [f"{self.mode_b} vs {self.mode_a} in {self.run}: answer agreement = percent of samples whose "
                 f"extracted answers are equal; Δ = {self.mode_b} - {self.mode_a} accuracy (mean@1) in points, "
                 f"95% paired bootstrap interval over problems.", ""]
        header = ["task", "budget", "agreement %", f"{self.mode_a} %", f"{self.mode_b} %", "Δ points", "95% interval"]
        lines += [markdown_row(header), markdown_row(["---", "---:"] + ["---:"] * (len(header) - 2))]
        for row in self.table.itertuples(index=False):
            interval = ("—" if pd.isna(row.delta_ci_low)
                        else f"[{100 * row.delta_ci_low:+.1f}, {100 * row.delta_ci_high:+.1f}]")
            lines.append(markdown_row([row.task, format_budget(int(row.budget)), percent(row.agreement),
                                       percent(row.mean_a), percent(row.mean_b), f"{100 * row.delta:+.1f}", interval]))
        return "\n".join(lines) + "\n"


def compare_modes(scores: pd.DataFrame, modes: Sequence[str], run: str = "", bootstrap: int = DEFAULT_BOOTSTRAP,
                  seed: int = 0) -> ModeComparison:
    """Compare `modes` (exactly two: reference, other) of one run's scores table (see the module docstring)."""
    if len(modes) != 2 or modes[0] == modes[1]:
        raise UserError(f"--modes {','.join(modes)} must name two different modes to compare, e.g. forced,engine.")
    mode_a, mode_b = modes
    present = set(scores["mode"])
    for mode in modes:
        if mode not in present:
            raise UserError(f"Run {run} has no {mode} scores (it has {', '.join(sorted(present))}): run "
                            f"`budgeteval run` with --modes {mode}, or compare modes it has.")
    keys = ["task", "budget", "problem_id", "sample_idx"]
    a = scores[scores["mode"] == mode_a].set_index(keys)[["extracted", "correct"]]
    b = scores[scores["mode"] == mode_b].set_index(keys)[["extracted", "correct"]]
    paired = a.merge(b, left_index=True, right_index=True, suffixes=("_a", "_b")).reset_index()
    if paired.empty:
        raise UserError(f"Modes {mode_a} and {mode_b} of run {run} share no task x budget to compare: score both at "
                        f"the same budgets (`budgeteval score {run} --modes {mode_a},{mode_b}`).")
    extracted_a = paired["extracted_a"].astype(object).where(paired["extracted_a"].notna(), None)
    extracted_b = paired["extracted_b"].astype(object).where(paired["extracted_b"].notna(), None)
    paired["agree"] = [x == y for x, y in zip(extracted_a, extracted_b)]
    rows = []
    for (task, budget), cell in paired.groupby(["task", "budget"], sort=True):
        problems = cell.groupby("problem_id", sort=True)
        accuracy_a = problems["correct_a"].mean().astype(float)
        accuracy_b = problems["correct_b"].mean().astype(float)
        differences = (accuracy_b - accuracy_a).to_numpy()
        low, high = (bootstrap_interval(differences, resample_counts(str(task), len(differences), bootstrap, seed))
                     if bootstrap else (np.nan, np.nan))
        rows.append({"task": task, "budget": int(budget), "mode_a": mode_a, "mode_b": mode_b,
                     "problems": len(differences), "samples": len(cell), "agreement": float(cell["agree"].mean()),
                     "mean_a": float(accuracy_a.mean()), "mean_b": float(accuracy_b.mean()),
                     "delta": float(differences.mean()), "delta_ci_low": low, "delta_ci_high": high})
    return ModeComparison(run=run, mode_a=mode_a, mode_b=mode_b,
                          table=pd.DataFrame(rows, columns=list(MODE_COMPARISON_COLUMNS)))


def compare_run_modes(run_dir, modes: Sequence[str], bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> ModeComparison:
    """`compare_modes` on a run directory's `scores.parquet`."""
    from budgeteval.rundir.scores import read_scores

    return compare_modes(read_scores(run_dir), modes, run=str(run_dir), bootstrap=bootstrap, seed=seed)
