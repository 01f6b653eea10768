"""Merge the run directories of a sharded run (`budgeteval merge SHARD_DIR… --out RUN`) into one run.

Refuses, with one sentence naming the shard, anything that would not give the single run's
result: a directory that is not a shard, shards of different N, a missing or doubled shard, a
shard generated with other settings (its generation fingerprint differs: model, seed, sampling,
prompt, modes, data …) and a shard that did not finish. Then it writes an ordinary run
directory: the shards' stored rows laid out as one uninterrupted single-process run lays them out
(problems in dataset order, `problems_per_shard` problems per part file), the tokenizer and
problem files, a manifest whose generation fingerprint is the single run's (plus where each part
came from), and scores it the way the shards were scored — so `scores.parquet` and `metrics.csv`
are byte-identical to those of the same command run without `--shard`.

Not here: choosing the partition (`budgeteval.generation.shards`) or starting the shards (SLURM, a loop).
"""

import dataclasses
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from budgeteval.errors import UserError
from budgeteval.generation.shards import Shard, shard_of
from budgeteval.rundir.layout import foreign_entries, tokenizer_dir
from budgeteval.rundir.lock import lock_run
from budgeteval.rundir.manifest import Manifest, first_difference, now_utc, read_manifest, write_manifest
from budgeteval.rundir.problems import read_problems, write_problems
from budgeteval.rundir.store import (
    CONDITIONED,
    CONTINUATIONS,
    ENGINE,
    GENERATIONS,
    StoreKind,
    read_task,
    write_shard,
)


@dataclass(frozen=True)
class ShardRun:
    """A shard's run directory and what merging needs from its manifest."""

    path: Path
    """The shard's run directory."""
    shard: Shard
    """Its place in the partition."""
    fingerprint: dict
    """Its generation fingerprint without the shard section (equal for every shard of one run)."""
    problem_ids: dict
    """task -> every problem id of the whole run, in dataset order."""
    manifest: Manifest
    """The shard's manifest."""


def read_shard_run(path: Path) -> ShardRun:
    """Read a shard directory's manifest."""
    manifest = read_manifest(path)
    section = manifest.shard
    if not section:
        raise UserError(f"{path} is not a shard (it was run without --shard): pass the directories that "
                        f"`budgeteval run … --shard I/N` wrote.")
    fingerprint = {key: value for key, value in manifest.generation.items() if key != "shard"}
    return ShardRun(Path(path), Shard(section["index"], section["count"]), fingerprint, section["problem_ids"],
                    manifest)


def check_cover(shards: Sequence[ShardRun]) -> list[ShardRun]:
    """Check that the shards are one complete partition of one run; return them in shard order."""
    first = shards[0]
    count = first.shard.count
    seen: dict[int, ShardRun] = {}
    for item in shards:
        if item.shard.count != count:
            raise UserError(f"{item.path} is shard {item.shard} but {first.path} is shard {first.shard}: "
                            f"merge shards of one split (the same N).")
        if item.shard.index in seen:
            raise UserError(f"Shard {item.shard} is given twice ({seen[item.shard.index].path} and {item.path}): "
                            f"pass each shard once.")
        seen[item.shard.index] = item
    missing = [index for index in range(count) if index not in seen]
    if missing:
        raise UserError(f"Shard {missing[0]}/{count} is missing ({len(seen)} of {count} shards given: "
                        f"{', '.join(str(index) for index in sorted(seen))}): pass the directory of shard "
                        f"{missing[0]}/{count} too, or run it first.")
    ordered = [seen[index] for index in range(count)]
    reference = ordered[0]
    for item in ordered[1:]:
        difference = first_difference(reference.fingerprint, item.fingerprint)
        if difference is None and item.problem_ids != reference.problem_ids:
            difference = "its problem lists differ"
        if difference:
            raise UserError(f"Shard {item.shard} ({item.path}) was generated with other settings than shard "
                            f"{reference.shard} ({reference.path}) ({difference}): every shard must come from the "
                            f"same command with only --shard changed.")
    return ordered


def _check_complete(item: ShardRun, task: str, kind: StoreKind, units: set, expected: set) -> None:
    if units != expected:
        raise UserError(f"Shard {item.shard} ({item.path}) is incomplete: its {kind.folder} store of task {task} "
                        f"holds {len(units & expected)} of {len(expected)} units; re-run its command to finish it.")


def _merge_kind(ordered: list[ShardRun], out: Path, task: str, problem_ids: list[str], kind: StoreKind,
                budgets: Sequence[int], problems_per_shard: int) -> None:
    """Write one task's rows of one store kind from every shard, in a single run's layout."""
    by_unit: dict[tuple, list[dict]] = {}
    for item in ordered:
        mine = [problem_id for problem_id in problem_ids if shard_of(task, problem_id, item.shard.count) == item.shard.index]
        rows = read_task(item.path, task, kind=kind).to_pylist()
        units = {tuple(row[column] for column in kind.unit) for row in rows}
        expected = {(problem_id,) for problem_id in mine} if kind is GENERATIONS else \
            {(problem_id, budget) for problem_id in mine for budget in budgets}
        _check_complete(item, task, kind, units, expected)
        for row in rows:
            by_unit.setdefault(tuple(row[column] for column in kind.unit), []).append(row)
    # A single run stores units in this order: problems in dataset order (per budget for the
    # budget-keyed stores), `problems_per_shard` units per part file.
    order = [(problem_id,) for problem_id in problem_ids] if kind is GENERATIONS else \
        [(problem_id, budget) for budget in budgets for problem_id in problem_ids]
    for start in range(0, len(order), problems_per_shard):
        records = [kind.record(**row) for unit in order[start:start + problems_per_shard]
                   for row in sorted(by_unit[unit], key=lambda row: row["sample_idx"])]
        write_shard(out, task, records, kind=kind)


def merge_runs(shard_dirs: Sequence[Path], out: Path, overwrite: bool = False, workers: int = 4,
               progress: bool = True) -> Path:
    """Check the shards, write the merged run directory `out`, score it; returns `out`."""
    if not shard_dirs:
        raise UserError("merge needs the shard directories: budgeteval merge SHARD_DIR... --out RUN.")
    out = Path(out)
    resolved = {Path(path).resolve() for path in shard_dirs}
    if out.resolve() in resolved:
        raise UserError(f"--out {out} is one of the shards: choose a new directory for the merged run.")
    ordered = check_cover([read_shard_run(Path(path)) for path in shard_dirs])
    with lock_run(out, "merge"):
        _merge_locked(ordered, out, overwrite, workers, progress)
    return out


def _merged_manifest(ordered: list[ShardRun], out: Path) -> Manifest:
    """The first shard's manifest made into a single run's: no shard section, the part each shard played."""
    first = ordered[0].manifest
    whole = ordered[0].fingerprint.get("tasks", {})
    tasks = {name: dataclasses.replace(entry, num_problems=whole.get(name, {}).get("num_problems"),
                                       data_sha256=whole.get(name, {}).get("data_sha256"))
             for name, entry in first.tasks.items()}
    engines = [item.manifest.engine for item in ordered if item.manifest.engine]
    merged = {
        "at": now_utc(),
        "shards": [{"shard": str(item.shard), "path": str(item.path.resolve()), "created": item.manifest.created,
                    "generated_at": item.manifest.generated_at, "engine": item.manifest.engine,
                    "hardware": item.manifest.hardware} for item in ordered],
    }
    return first.replace(config=dataclasses.replace(first.config, out=str(out), shard=None), tasks=tasks,
                         generation=dict(ordered[0].fingerprint), shard=None, merged=merged, scoring=None,
                         engine=engines[0] if engines else None)


MERGING_MARKER = ".budgeteval-merging"
"""Present in `--out` while a merge writes it: a killed merge is redone by the same command."""


def _merge_locked(ordered: list, out: Path, overwrite: bool, workers: int, progress: bool) -> None:
    """`merge_runs` once `out`'s write lock is held: clear `out`, write the merged run, score it.

    The marker file says a merge is under way, so a directory a killed merge left is cleared and
    written again by the same command (without --overwrite); the shards are only ever read.
    """
    from budgeteval.scoring.evaluate import evaluate_run

    marker = out / MERGING_MARKER
    entries = foreign_entries(out)
    if entries and not (overwrite or marker.exists()):
        raise UserError(f"{out} exists and is not empty: choose another --out or pass --overwrite.")
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    marker.touch()

    first = ordered[0]
    config = first.manifest.config
    budgets = sorted(config.budgets)
    modes = first.manifest.run_modes
    kinds = ([GENERATIONS] if "cutoff" in modes or "forced" in modes else []) + \
        ([CONTINUATIONS] if "forced" in modes else []) + ([CONDITIONED] if "conditioned" in modes else []) + \
        ([ENGINE] if "engine" in modes else [])
    for task, problem_ids in first.problem_ids.items():
        problems: dict[str, dict] = {}
        for item in ordered:
            problems.update(read_problems(item.path, task))
        # Every stored column of a problem (its groups too), in the whole run's problem order.
        write_problems(out, task, [problems[problem_id] for problem_id in problem_ids])
        for kind in kinds:
            _merge_kind(ordered, out, task, problem_ids, kind, budgets, config.problems_per_shard)
    shutil.copytree(tokenizer_dir(first.path), tokenizer_dir(out))
    write_manifest(out, _merged_manifest(ordered, out))
    scoring = _scoring_settings(ordered)
    evaluate_run(out, workers=workers, progress=progress, **scoring)
    marker.unlink()


def _scoring_settings(ordered: list[ShardRun]) -> dict:
    """Score the merged run as its shards were scored (budgets, bootstrap and its seed)."""
    scoring = next((item.manifest.scoring for item in ordered if item.manifest.scoring), None)
    if scoring is None:
        return {}
    return {"budgets": list(scoring.budgets), "bootstrap": scoring.bootstrap, "bootstrap_seed": scoring.bootstrap_seed,
            "answer_policy": scoring.answer_policy}
