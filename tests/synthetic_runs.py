"""Small run directories written through the real writers (manifest, scores, metrics), for compare/plot tests.

A run here has no generations/ or tokenizer/: compare and plot read only the manifest,
scores.parquet and metrics.csv, which is what these directories hold.
"""

from pathlib import Path

import pandas as pd

from budgeteval.generation.config import RunConfig
from budgeteval.rundir.manifest import Manifest, ScoringSection, TaskEntry, write_manifest
from budgeteval.scoring.evaluate import write_scores
from budgeteval.scoring.metrics import compute_metrics, write_metrics


def write_run(run_dir: Path, model: str, cells: dict, ks=(1, 2), bootstrap: int = 200, mode: str = "cutoff",
              task: str = "t", extra_scores: pd.DataFrame | None = None) -> Path:
    """Write a run whose scores are `cells[budget] = {problem_id: [(correct, num_tokens), ...]}`.

    A sample is finished when it is correct or shorter than the budget; its extracted answer is
    "right" or "wrong".
    """
    rows = []
    for budget, problems in cells.items():
        for problem_id, samples in problems.items():
            for sample_idx, (correct, num_tokens) in enumerate(samples):
                rows.append({
                    "task": task, "problem_id": problem_id, "sample_idx": sample_idx, "budget": budget, "mode": mode,
                    "num_tokens": num_tokens, "finished": bool(correct or num_tokens < budget),
                    "extracted": "right" if correct else "wrong", "correct": bool(correct), "timed_out": False,
                })
    scores = pd.DataFrame(rows)
    if extra_scores is not None:
        scores = pd.concat([scores, extra_scores], ignore_index=True)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tasks = sorted(scores["task"].unique())
    write_manifest(run_dir, Manifest(
        kind="test",
        config=RunConfig(model=model, tasks=tuple(tasks), out=str(run_dir),
                         budgets=tuple(sorted(int(b) for b in scores["budget"].unique()))),
        tasks={name: TaskEntry(scorer="math", version=1) for name in tasks},
        scoring=ScoringSection(bootstrap=bootstrap, bootstrap_seed=0),
    ))
    write_scores(run_dir, scores)
    write_metrics(compute_metrics(scores, list(ks), bootstrap=bootstrap, seed=0), run_dir)
    return run_dir


def samples(*pairs):
    """[(correct, num_tokens), ...] from flat arguments: samples(True, 100, False, 200)."""
    return list(zip(pairs[0::2], pairs[1::2]))


# Hand-checked runs (see tests/test_compare.py for every number they give).
RUN_A = {  # baseline
    1024: {"p1": samples(True, 100, False, 200), "p2": samples(False, 300, False, 400)},
    2048: {"p1": samples(True, 100, False, 200), "p2": samples(True, 500, False, 600)},
    4096: {"p1": samples(True, 100, True, 200), "p2": samples(True, 1000, False, 1100)},
}
RUN_B = {  # more accurate and shorter
    1024: {"p1": samples(True, 50, True, 50), "p2": samples(False, 100, False, 200)},
    2048: {"p1": samples(True, 50, True, 50), "p2": samples(True, 100, True, 200)},
    4096: {"p1": samples(True, 50, True, 50), "p2": samples(True, 150, True, 350)},
}
RUN_C = {  # much shorter, less accurate, and without the 2048 budget
    1024: {"p1": samples(False, 10, False, 10), "p2": samples(False, 10, False, 10)},
    4096: {"p1": samples(True, 20, False, 20), "p2": samples(False, 20, False, 20)},
}


def hand_checked_runs(root: Path) -> tuple[Path, Path, Path]:
    """Write RUN_A, RUN_B and RUN_C under `root` (models org/model-a, org/model-b, /ckpt/model-c/)."""
    return (write_run(root / "a", "org/model-a", RUN_A), write_run(root / "b", "org/model-b", RUN_B),
            write_run(root / "c", "/ckpt/model-c/", RUN_C))
