"""Benchmark: the viewer on a large synthetic run — site size, first-view page weight, open times in Chromium.

Writes a run directory of `--problems` problems x `--samples` samples scored at `--budgets`
(default 500 x 64 at 2k..32k: the scores, metrics and index are at full size), with response
token ids (Qwen2.5 tokenizer, lengths lognormal around `--median-tokens`, capped at the largest
budget) stored for the first `--text-problems` problems; `--text-problems` equal to `--problems`
stores every text (the site build then decodes all of them: about 600M tokens at the defaults,
most of an hour on a 2-core machine). The first view never reads response texts, so its weight does
not depend on how many are stored; opening a problem reads that one problem's file.

Then it builds the site (`budgeteval.viewer.build_site`) and opens it from file:// in headless
Chromium: the overview (first view), the problem grid, and one problem's sample page. Page weight
= the bytes of every file the page requested. Prints one table.

    python bench/viewer_scale.py                       # 500 x 64, texts for 8 problems
    python bench/viewer_scale.py --problems 50 --samples 8 --text-problems 50
"""

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORDS = ("Let x be a real number such that \\frac{1}{2} + y = 3. We compute the sum of all integers n with "
         "1 <= n <= 100, then check each case: if n is even, 2 divides n; otherwise n = 2k + 1 for some k. "
         "Therefore the final answer is \\boxed{42}. Wait, let me verify this step by step once more.")
"""Text whose token ids the synthetic responses are drawn from (so they decode to word-like text)."""


def write_synthetic_run(run_dir: Path, tokenizer, problems: int, samples: int, budgets: list[int],
                        text_problems: int, median_tokens: int, seed: int) -> int:
    """Write the run (store shards, problems, tokenizer, manifest, scores, metrics); returns stored tokens."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from budgeteval.generation.config import RunConfig
    from budgeteval.rundir.manifest import Manifest, ScoringSection, TaskEntry, write_manifest
    from budgeteval.rundir.problems import write_problems
    from budgeteval.rundir.scores import write_scores
    from budgeteval.rundir.store import SCHEMA, task_dir
    from budgeteval.scoring.metrics import compute_metrics, write_metrics

    task, max_tokens = "math500", max(budgets)
    rng = np.random.default_rng(seed)
    pool = np.array(sorted(set(tokenizer(WORDS, add_special_tokens=False)["input_ids"])), dtype=np.int32)
    lengths = np.minimum(max_tokens, rng.lognormal(np.log(median_tokens), 0.8, size=(problems, samples)).astype(int) + 1)
    ability = rng.beta(2, 2, size=problems)
    right = rng.random((problems, samples)) < ability[:, None]
    ids = [f"p{index:04d}" for index in range(problems)]

    write_problems(run_dir, task, [{"problem_id": problem_id, "question": f"Problem {i}: {WORDS}", "reference": "42",
                                    "level": 1 + i % 5} for i, problem_id in enumerate(ids)])
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))
    stored, shard_problems = 0, 8
    for start in range(0, text_problems, shard_problems):
        rows = {name: [] for name in SCHEMA.names}
        for p in range(start, min(text_problems, start + shard_problems)):
            for s in range(samples):
                token_ids = rng.choice(pool, int(lengths[p, s]))
                stored += len(token_ids)
                values = {"task": task, "problem_id": ids[p], "sample_idx": s, "prompt": "", "prompt_num_tokens": 0,
                          "token_ids": token_ids, "text": "", "seed": s, "max_tokens": max_tokens, "model": "synthetic",
                          "backend": "synthetic",
                          "finish_reason": "length" if lengths[p, s] >= max_tokens else "stop"}
                for name, value in values.items():
                    rows[name].append(value)
        folder = task_dir(run_dir, task)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows, schema=SCHEMA), folder / f"part-{start // shard_problems:05d}.parquet")

    frames = []
    for budget in budgets:
        finished = lengths <= budget
        frames.append(pd.DataFrame({
            "task": task, "problem_id": np.repeat(ids, samples), "sample_idx": np.tile(np.arange(samples), problems),
            "budget": budget, "mode": "cutoff", "num_tokens": np.minimum(lengths, budget).ravel(),
            "finished": finished.ravel(), "extracted": np.where((right & finished).ravel(), "42", "41"),
            "correct": (right & finished).ravel(), "timed_out": False}))
    scores = pd.concat(frames, ignore_index=True)
    ks = sorted({1, samples})
    write_manifest(run_dir, Manifest(
        kind="test", config=RunConfig(model="org/synthetic", tasks=(task,), out=str(run_dir), budgets=tuple(budgets)),
        tasks={task: TaskEntry(scorer="math")},
        scoring=ScoringSection(budgets=tuple(budgets), modes=("cutoff",), ks=tuple(ks))))
    write_scores(run_dir, scores)
    write_metrics(compute_metrics(scores, ks), run_dir)
    return stored


def open_in_chromium(index: Path, sample_route: str) -> dict:
    """Open the site's overview, grid and one sample page; bytes requested and seconds until each is drawn."""
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ.get("BUDGETEVAL_CHROMIUM", "/usr/bin/chromium"),
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requested = []
            page.on("request", lambda request: requested.append(request.url))

            def visit(name: str, route: str, ready: str, fresh: bool) -> None:
                requested.clear()
                started = time.perf_counter()
                if fresh:
                    page.goto(index.as_uri() + route)
                else:
                    page.evaluate(f"location.hash = {route!r}")
                page.wait_for_function("ready => (document.body.dataset.ready || '').startsWith(ready)", arg=ready,
                                       timeout=600_000)  # a function: the page's CSP forbids eval
                seconds = time.perf_counter() - started
                files = {Path(unquote(urlparse(url).path)) for url in requested if url.startswith("file:")}
                results[name] = (sum(path.stat().st_size for path in files if path.is_file()), len(files), seconds)

            visit("overview (first view)", "#overview", "overview", fresh=True)
            visit("problem grid", "#grid", "grid", fresh=False)
            visit("sample page of one problem", sample_route, "sample:", fresh=False)
        finally:
            browser.close()
    return results


def main() -> None:
    from budgeteval.generation.budgets import parse_budgets
    from budgeteval.generation.tokenizer import load_tokenizer
    from budgeteval.report.runs import load_run
    from budgeteval.viewer import build_site

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--budgets", default="2k,4k,8k,16k,32k")
    parser.add_argument("--median-tokens", type=int, default=6000, help="median response length (tokens)")
    parser.add_argument("--text-problems", type=int, default=8, help="problems whose response token ids are stored")
    parser.add_argument("--tokenizer", default=str(ROOT.parent / "shared" / "tokenizers" / "qwen2.5"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=None, help="folder for the run and site (default: a temporary one)")
    args = parser.parse_args()
    budgets = parse_budgets(args.budgets)
    text_problems = min(args.text_problems, args.problems)

    work = Path(args.work or tempfile.mkdtemp(prefix="viewer-scale-"))
    run_dir, site_dir = work / "run", work / "site"
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        tokenizer = load_tokenizer(args.tokenizer)
        started = time.perf_counter()
        stored = write_synthetic_run(run_dir, tokenizer, args.problems, args.samples, budgets, text_problems,
                                     args.median_tokens, args.seed)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        index = build_site([load_run(run_dir)], site_dir)
        build_s = time.perf_counter() - started
        site_bytes = sum(path.stat().st_size for path in site_dir.rglob("*") if path.is_file())
        index_bytes = (site_dir / "data" / "index.js").stat().st_size
        problem_files = sorted((site_dir / "data" / "problems").glob("*.js"), key=lambda p: p.stat().st_size)
        largest, largest_bytes = problem_files[-1], problem_files[-1].stat().st_size
        opened = open_in_chromium(index, f"#sample/{int(largest.stem)}/0/{budgets[-1]}/cutoff")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; "
          f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"run: {args.problems} problems x {args.samples} samples x budgets {args.budgets} "
          f"(scores: {args.problems * args.samples * len(budgets):,} rows); response ids stored for {text_problems} "
          f"problems ({stored:,} tokens, median length {args.median_tokens}, cap {max(budgets)})")
    print(f"written in {write_s:.1f} s; site built in {build_s:.1f} s, {site_bytes / 1e6:.1f} MB on disk, "
          f"index {index_bytes / 1e6:.2f} MB, largest problem file {largest_bytes / 1e6:.2f} MB")
    print()
    print("| view | files requested | page weight | open time |")
    print("| --- | ---: | ---: | ---: |")
    for name, (size, count, seconds) in opened.items():
        print(f"| {name} | {count} | {size / 1e6:.2f} MB | {seconds:.2f} s |")
    weight = opened["overview (first view)"][0]
    print(f"\nfirst-view page weight {weight / 1e6:.2f} MB: {'within' if weight <= 5e6 else 'OVER'} the 5 MB target")


if __name__ == "__main__":
    sys.exit(main())
