"""Per-request seeds: the one definition every backend, stage and trainer adapter uses.

A request's seed depends on the run seed, the task and the problem id, never on order, batch or
shard, so a sample is reproducible on its own. Sample i of an n-sample request uses seed + i
(vLLM's convention for the children of an `n` request; the openai and hf backends follow it).
A forced continuation gets a seed derived from its sample's seed and the budget.
"""

import hashlib


def derive_seed(run_seed: int, task: str, problem_id: str) -> int:
    """Per-request seed of a problem: depends on the run seed, the task and the problem, never on order or batch."""
    digest = hashlib.sha256(f"{run_seed}\x00{task}\x00{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF


def sample_seed(request_seed: int, sample_idx: int) -> int:
    """Seed of sample `sample_idx` of a request (vLLM seeds child i of an n-sample request with seed + i)."""
    return request_seed + sample_idx


def continuation_seed(sample_seed_value: int, budget: int) -> int:
    """Seed of the forced continuation of one sample at budget B (independent of the other budgets)."""
    digest = hashlib.sha256(f"{sample_seed_value}\x00forced\x00{budget}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x3FFFFFFF
