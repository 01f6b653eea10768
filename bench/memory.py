"""Benchmark: peak memory of `budgeteval score` against the number of stored samples x tokens.

A synthetic run of the size the mean@k protocols produce: `--problems` AIME-sized problems x N
samples (`--samples 4,16,64`) x `--tokens` token ids per response (32k: every response is cut at
every budget), scored at five budgets (2k..32k) with `--workers` math-verify workers. The run is
made with the real writers: `budgeteval.ingest.generations` writes the manifest, tokenizer and problems of
a one-sample skeleton, then `store.write_shard` stores the N samples of each problem (seeded random
token ids of the Qwen3 vocabulary with a `\\boxed{k}` every ~4k tokens, so the scorer has answers to
verify at every budget). Each measurement runs the real CLI (`python -m budgeteval.cli score`) in
a fresh process, cold (no scores, no verdict cache); the peak resident set (VmHWM) of the command's
own process and of its largest worker are read from /proc while it runs.

`--baseline-src DIR` measures a second checkout (e.g. `git worktree add /tmp/before <rev>`) on the
same runs, side by side in the same invocation, and prints the ratio.

    .venv/bin/python bench/memory.py [--samples 4,16,64] [--baseline-src /tmp/before]
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = ROOT.parent / "shared"
BUDGETS = "2k,4k,8k,16k,32k"
BOX_EVERY = 4096


def machine() -> str:
    name = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.lower().startswith("model name"):
            name = line.split(":", 1)[1].strip()
            break
    return f"{name}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"


def make_run(root: Path, problems: int, samples: int, tokens: int, seed: int = 0) -> Path:
    """A scored-nowhere run directory of `problems` x `samples` responses of `tokens` ids each."""
    from tokenizers import Tokenizer

    from budgeteval.ingest.generations import import_generations
    from budgeteval.rundir.store import GenerationRecord, task_dir, write_shard

    tokenizer_path = SHARED_DIR / "tokenizers" / "qwen3"
    skeleton = root / "skeleton.jsonl"
    skeleton.write_text("".join(json.dumps({"problem_id": str(p), "sample_idx": 0, "response": "so \\boxed{1}",
                                            "reference": str(p % 10), "question": f"Problem {p}?"}) + "\n"
                                for p in range(problems)))
    run_dir = root / f"run-{samples}"
    fields = {name: name for name in ("problem_id", "sample_idx", "response", "reference", "question")}
    import_generations(skeleton, "aime25", str(tokenizer_path), run_dir, fields, budgets=(tokens,),
                       model="synthetic", max_tokens=tokens, think_end="")
    shutil.rmtree(task_dir(run_dir, "aime25"))
    encoder = Tokenizer.from_file(str(run_dir / "tokenizer" / "tokenizer.json"))
    boxes = [encoder.encode(f" so the answer is \\boxed{{{k}}}. ").ids for k in range(10)]
    rng = np.random.default_rng(seed)
    for problem in range(problems):
        records = []
        for sample in range(samples):
            ids = rng.integers(1000, 100000, size=tokens, dtype=np.int64)
            for position in range(BOX_EVERY - 16, tokens - 16, BOX_EVERY):
                box = boxes[int(rng.integers(0, 10))]
                ids[position:position + len(box)] = box
            records.append(GenerationRecord(
                task="aime25", problem_id=str(problem), sample_idx=sample, prompt=f"Problem {problem}?",
                prompt_num_tokens=8, token_ids=ids.tolist(), text="", finish_reason="length", seed=sample,
                max_tokens=tokens, model="synthetic", backend="import"))
        write_shard(run_dir, "aime25", records)
    return run_dir


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure_score(run_dir: Path, source: Path, workers: int) -> dict:
    """Score `run_dir` cold with the checkout at `source`; peak RSS (MiB) of the command and of a worker."""
    from budgeteval.processes import descendants

    for name in ("scores.parquet", "metrics.csv", "metrics.json", "verdicts"):
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    env = {**os.environ, "PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "budgeteval.cli", "score", str(run_dir), "--budgets", BUDGETS,
               "--workers", str(workers), "--bootstrap", "0", "--quiet", "--answer-policy", "strict"]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=source, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    main_peak, worker_peak = 0, 0
    while process.poll() is None:
        main_peak = max(main_peak, _status_kib(process.pid, "VmHWM"))
        for child in descendants(process.pid):
            worker_peak = max(worker_peak, _status_kib(child, "VmHWM"))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    output = process.stdout.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"score failed with {source}:\n{output[-3000:]}")
    import pandas as pd

    scores = pd.read_parquet(run_dir / "scores.parquet")
    return {"main_mib": main_peak / 1024, "worker_mib": worker_peak / 1024, "wall_s": wall,
            "rows": len(scores), "correct": int(scores.correct.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--samples", default="4,16,64")
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="Another checkout of budgeteval to measure side by side (e.g. a git worktree).")
    args = parser.parse_args()
    sources = [("this checkout", ROOT)] + ([("baseline", args.baseline_src.resolve())] if args.baseline_src else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix="budgeteval-memory-") as temp:
        for samples in [int(part) for part in args.samples.split(",")]:
            run_dir = make_run(Path(temp), args.problems, samples, args.tokens)
            results = {label: measure_score(run_dir, source, args.workers) for label, source in sources}
            if len({(r["rows"], r["correct"]) for r in results.values()}) != 1:
                raise SystemExit(f"the checkouts disagree on the scores: {results}")
            rows.append((samples, results))
            shutil.rmtree(run_dir)
    print(f"\nbudgeteval score, peak RSS vs run size: {args.problems} problems x N samples x {args.tokens} token ids, "
          f"budgets {BUDGETS}, {args.workers} workers, cold")
    print(f"machine: {machine()}; Python {platform.python_version()}")
    header = "| samples/problem | token ids stored | method | command peak RSS (MiB) | worker peak RSS (MiB) | wall (s) |"
    print(header)
    print("|---|---|---|---|---|---|")
    for samples, results in rows:
        stored = args.problems * samples * args.tokens
        for label, result in results.items():
            print(f"| {samples} | {stored / 1e6:.1f} M | {label} | {result['main_mib']:.0f} | "
                  f"{result['worker_mib']:.0f} | {result['wall_s']:.1f} |")
        if len(results) == 2:
            base, this = results["baseline"], results["this checkout"]
            print(f"| {samples} | | baseline / this (RSS) | {base['main_mib'] / this['main_mib']:.2f}x | | "
                  f"{base['wall_s'] / this['wall_s']:.2f}x (wall) |")


if __name__ == "__main__":
    main()
