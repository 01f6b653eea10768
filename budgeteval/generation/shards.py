"""Which problems a shard of a sharded run generates (`budgeteval run … --shard I/N`).

A problem belongs to shard `hash(task, problem_id) mod N`: the partition depends on nothing but
the problem's own identity, so it does not change with dataset order, `--limit`, the other tasks
or the other shards, and every shard of one command computes it alike on any machine. Shard I
generates its problems into its own run directory; `budgeteval.ingest.merge` checks that a set of shard
directories covers every problem exactly once and writes one ordinary run directory.

Not here: scheduling (SLURM job arrays, or anything else that starts N commands) and merging.
"""

import hashlib
from dataclasses import dataclass, replace

from budgeteval.errors import UserError


@dataclass(frozen=True)
class Shard:
    """One part of an N-way partition of a run's problems."""

    index: int
    """This shard's number, 0 <= index < count (SLURM: `$SLURM_ARRAY_TASK_ID` with `--array=0-(N-1)`)."""
    count: int
    """Number of shards N the problems are split into."""

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`I/N` -> Shard(I, N), with one sentence for anything else."""
    index_text, sep, count_text = text.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if not sep or count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text!r} must be I/N with 0 <= I < N, e.g. 0/8 (SLURM: "
                        f"--shard $SLURM_ARRAY_TASK_ID/8 with --array=0-7).")
    return Shard(index, count)


def shard_of(task: str, problem_id: str, count: int) -> int:
    """The shard (0 … count-1) that generates `problem_id` of `task`."""
    digest = hashlib.sha256(f"{task}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


def select_shard(prepared: list, shard: Shard) -> list:
    """Keep, of each prepared task (`runner.PreparedTask`), only the problems of `shard`, in their order."""
    selected = []
    for item in prepared:
        keep = [index for index, problem in enumerate(item.problems)
                if shard_of(item.task.name, problem.problem_id, shard.count) == shard.index]
        selected.append(replace(item, problems=[item.problems[index] for index in keep],
                                prompts=[item.prompts[index] for index in keep],
                                prompt_token_ids=[item.prompt_token_ids[index] for index in keep]))
    return selected


def shard_manifest_section(shard: Shard, prepared: list) -> dict:
    """What a shard's manifest records: its place in the partition and every problem of the whole run.

    The full problem lists (dataset order) let `merge` check the cover and write the merged
    run's problems in the order a single run writes them.
    """
    return {"index": shard.index, "count": shard.count,
            "problem_ids": {item.task.name: [problem.problem_id for problem in item.problems] for item in prepared}}
