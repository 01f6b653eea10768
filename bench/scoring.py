"""Benchmark: the math scorer on a replayed sweep vs a naive one-call-per-item math-verify loop.

The sweep: the 500 MATH-500 problems (`../shared/data/math500.jsonl`) x 8 samples x 5 budgets
(2k..32k), shaped like a thinking model's replayed sweep. Each sample is the reference solution
with its final box rewritten to the sample's answer: the gold as written (85%), an equivalent
form (`\\dfrac`, spacing, `x = ...`: 5%), or one of two wrong answers per problem (10%), close
to Qwen2.5-Math's real samples in `../shared/generations` (91% correct, 1.1 distinct answers per
problem over 8 samples). Each sample finishes at some budget; from then on every budget replays
the same text. Below it, the thinking is unfinished (answer None, 90%) or the thinking ended but
the answer region is cut before its box (a prefix, scored as is, 10%). Seeded. The verdicts agree
except on a few such prefixes, which math-verify reads anything from and budgeteval's answer
sources (a box, a statement, else the last complete line) do not; the count is printed.

`score_batch` (spawned workers, one verification per distinct answer) is timed against a loop
that calls math-verify's `parse` + `verify` on every answered item in this process, in two orders:
budget by budget (how a sweep is replayed and scored one budget at a time), and problem by
problem (a text's repeats across budgets are adjacent, so math-verify's own small LRU caches
absorb most of them: the hardest baseline). The verdicts are compared (see above). Not a benchmark of
math-verify itself, nor of the GSM8K scorer.

Real outputs (second table): Qwen2.5-Math-7B-Instruct's 800 MATH responses in
`../shared/generations/` imported into a run directory (`budgeteval.ingest.generations`, budgets
128..4096: 4,000 items), then `budgeteval score RUN` run as a command (start-up, replay, decoding,
scoring, writing: its whole wall time) cold (no verdict cache) and warm (the run's own
`RUN/verdicts/` from the cold run), against a naive loop in one process that replays and decodes
each item and judges it with the same rule (`answer_key` + `judge`, one call per item, no
de-duplication, no cache; imports not timed). The verdicts of all three must be identical.

    .venv/bin/python bench/scoring.py [--problems 500] [--workers N] [--real-only]
"""

import argparse
import json
import logging
import multiprocessing
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

from budgeteval.scoring.answers import last_box_span
from budgeteval.scoring.scorers.base import ScoreItem
from budgeteval.scoring.scorers.math import (
    answer_extraction_config,
    answer_key,
    reference_text,
    score_batch,
)

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
BUDGETS = (2048, 4096, 8192, 16384, 32768)
SAMPLES_PER_PROBLEM = 8
FINISH_WEIGHTS = (0.30, 0.25, 0.20, 0.10, 0.10, 0.05)
"""P(a sample first finishes at budget 0..4), and P(never finishes) last."""


def equivalent_form(answer: str, rng: random.Random) -> str:
    """A different spelling of the same answer (math-verify should still accept it)."""
    if "\\frac" in answer:
        return answer.replace("\\frac", "\\dfrac")
    if "," in answer:
        return answer.replace(",", ", ")
    if re.fullmatch(r"-?\d+", answer):
        return rng.choice([f"x = {answer}", f"{answer}.0", f"{{{answer}}}"])
    return f" {answer} "


def wrong_answer(answer: str, other_answers: list[str], rng: random.Random) -> str:
    """An answer that differs from the gold (a nearby integer or another problem's answer)."""
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + rng.choice([-2, -1, 1, 2, 10]))
    return rng.choice(other_answers)


def with_final_answer(solution: str, answer: str) -> str:
    """The solution text with the content of its last box replaced by `answer`."""
    span = last_box_span(solution)
    if span is None:
        return f"{solution}\n\nTherefore, the final answer is $\\boxed{{{answer}}}$."
    return f"{solution[:span[0]]}{answer}{solution[span[1]:]}"


def build_sweep(problems: list[dict], rng: random.Random) -> list[ScoreItem]:
    """All (problem, sample, budget) items of a replayed sweep, in that order."""
    all_answers = [problem["answer"] for problem in problems]
    items = []
    for index, problem in enumerate(problems):
        gold = problem["answer"]
        # Samples of one problem agree a lot: two wrong answers per problem, reused.
        wrongs = [wrong_answer(gold, all_answers, rng) for _ in range(2)]
        for _ in range(SAMPLES_PER_PROBLEM):
            kind = rng.choices(["gold", "equivalent", "wrong"], weights=[0.85, 0.05, 0.10])[0]
            answer = {"gold": gold, "equivalent": equivalent_form(gold, rng), "wrong": rng.choice(wrongs)}[kind]
            response = "Let's solve this step by step.\n\n" + with_final_answer(problem["solution"], answer)
            finish = rng.choices(range(len(BUDGETS) + 1), weights=FINISH_WEIGHTS)[0]
            box_start = response.rfind("\\boxed")
            for budget_index, _ in enumerate(BUDGETS):
                text: str | None = response
                if budget_index < finish:
                    if rng.random() < 0.9:
                        text = None  # unfinished thinking: nothing to score
                    else:  # answer region cut before its box, a bit longer at each budget
                        text = response[: max(1, box_start * (budget_index + 1) // (len(BUDGETS) + 1))]
                items.append(ScoreItem(f"math500-{index}", gold, text))
    return items


def naive_verdicts(items: list[ScoreItem], order: list[int]) -> tuple[list[bool], float, float]:
    """math-verify once per answered item, visiting items in `order`; (verdicts, wall s, CPU s).

    Run in a fresh process (`run_naive`), so neither order inherits the other's warm caches.
    """
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeout records quote whole texts
    started, started_cpu = time.perf_counter(), time.process_time()
    extraction = answer_extraction_config()
    correct = [False] * len(items)
    for index in order:
        item = items[index]
        if item.answer_text is None:
            continue
        gold = parse(reference_text(item.reference))
        pred = parse(item.answer_text, extraction)
        correct[index] = bool(gold and pred) and verify(gold, pred)
    return correct, time.perf_counter() - started, time.process_time() - started_cpu


def run_naive(items: list[ScoreItem], order: list[int]) -> tuple[list[bool], float, float]:
    """`naive_verdicts` in a fresh spawned process (its import time not counted)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(naive_verdicts, (items, order))


REAL_OUTPUTS = "qwen25math_math_cot_100.jsonl"
REAL_BUDGETS = (128, 256, 512, 1024, 4096)


NAIVE_RULES = {
    "math-verify": "math-verify's parse (boxed first, then its LaTeX/number fallbacks) on the whole answer "
                   "region + verify, per item",
    "same rule": "budgeteval's rule (answer_key, strict policy, judge) per item, no de-duplication, no cache",
}


def naive_run_verdicts(run_dir: str, rule: str) -> tuple[list[tuple], float]:
    """Replay, decode and judge every (sample, budget) of a run one by one in this process:
    ([(problem_id, sample_idx, budget, correct)], wall s). `rule`: a key of NAIVE_RULES.
    Imports, math-verify's first parse and the tokenizer load are not timed."""
    import pyarrow.parquet as pq
    from math_verify import parse, verify

    from budgeteval.generation.tokenizer import load_decoder
    from budgeteval.rundir.problems import read_problems
    from budgeteval.scoring.answers import accepts
    from budgeteval.scoring.replay import answer_region, cut
    from budgeteval.scoring.scorers.math import judge, prepare_worker

    prepare_worker()  # math-verify imported and warmed, as the workers are before their first job
    decoder = load_decoder(str(Path(run_dir) / "tokenizer"))
    references = {problem_id: row["reference"] for problem_id, row in read_problems(Path(run_dir), "math500").items()}
    extraction = answer_extraction_config()
    started = time.perf_counter()
    samples = pq.read_table(Path(run_dir) / "generations" / "math500",
                            columns=["problem_id", "sample_idx", "token_ids", "finish_reason"]).to_pylist()
    verdicts = []
    for sample in samples:
        reference = references[sample["problem_id"]]
        for budget in REAL_BUDGETS:
            kept, finished = cut(len(sample["token_ids"]), sample["finish_reason"], budget)
            text = answer_region(decoder.decode(sample["token_ids"][:kept], skip_special_tokens=True), "", False)
            if rule == "math-verify":
                gold, pred = parse(reference_text(reference)), parse(text, extraction)
                correct = bool(gold and pred) and verify(gold, pred)
            else:
                key = answer_key(text, reference)
                correct = accepts("strict", key.source, finished) and judge(reference, key).correct
            verdicts.append((sample["problem_id"], sample["sample_idx"], budget, bool(correct)))
    return verdicts, time.perf_counter() - started


def real_outputs(workers: int) -> None:
    """The second table: `budgeteval score` on the real Qwen2.5-Math outputs, cold and warm, vs naive."""
    import subprocess
    import tempfile

    import pandas as pd

    from budgeteval.ingest.generations import import_generations

    source = SHARED_DIR / "generations" / REAL_OUTPUTS
    if not source.exists():
        sys.exit(f"needs {source} (../shared beside the repository)")
    with tempfile.TemporaryDirectory(prefix="budgeteval-bench-") as temp:
        run_dir = Path(temp) / "run"
        fields = {"problem_id": "problem_idx", "sample_idx": "sample_idx", "response": "response",
                  "reference": "gold", "question": "question"}
        import_generations(source, "math500", str(SHARED_DIR / "tokenizers" / "qwen2.5"), run_dir, fields,
                           budgets=REAL_BUDGETS, model="Qwen2.5-Math-7B-Instruct", max_tokens=4096)
        command = [sys.executable, "-m", "budgeteval.cli", "score", str(run_dir), "--workers", str(workers),
                   "--bootstrap", "0", "--quiet", "--answer-policy", "strict"]
        load_before = os.getloadavg()[0]
        timings, tables = {}, {}
        for name in ("cold", "warm"):
            if name == "cold":
                import shutil

                shutil.rmtree(run_dir / "verdicts", ignore_errors=True)
            started = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            timings[name] = time.perf_counter() - started
            tables[name] = pd.read_parquet(run_dir / "scores.parquet")
        naive, naive_s = {}, {}
        for rule in NAIVE_RULES:  # each in a fresh process: no rule inherits another's warm caches
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                naive[rule], naive_s[rule] = pool.apply(naive_run_verdicts, (str(run_dir), rule))
    order = ["problem_id", "sample_idx", "budget"]
    ours = tables["cold"].sort_values(order)
    differ = {}
    for rule, verdicts in naive.items():
        frame = pd.DataFrame(verdicts, columns=order + ["correct"]).sort_values(order)
        differ[rule] = int((ours.correct.to_numpy() != frame.correct.to_numpy()).sum())
    assert differ["same rule"] == 0, "the same-rule loop's verdicts differ"
    assert tables["cold"].equals(tables["warm"]), "the warm re-score's scores differ"
    answered = int((ours.answer_source != "none").sum())
    print(f"\nReal outputs: {REAL_OUTPUTS} ({len(ours) // len(REAL_BUDGETS)} responses x {len(REAL_BUDGETS)} budgets "
          f"= {len(ours)} items, {answered} with an answer under the strict policy; accuracy at 4096 "
          f"{ours[ours.budget == 4096].correct.mean():.3f}); cold and warm scores identical; load average "
          f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Python {platform.python_version()}\n")
    print("| method | items | verdicts differing from budgeteval's | wall s | speedup vs naive "
          f"({' / '.join(naive_s)}) |")
    print("|---|---|---|---|---|")
    rows = [(f"naive loop, 1 process: {NAIVE_RULES[rule]} (imports and tokenizer load not timed)", differ[rule],
             naive_s[rule]) for rule in naive_s]
    rows += [(f"`budgeteval score`, {workers} workers, cold (the whole command)", 0, timings["cold"]),
             (f"`budgeteval score`, {workers} workers, warm verdict cache (the whole command)", 0, timings["warm"])]
    for method, differing, seconds in rows:
        speedups = " / ".join(f"{base / seconds:.1f}x" for base in naive_s.values())
        print(f"| {method} | {len(ours)} | {differing} | {seconds:.1f} | {speedups} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real-only", action="store_true", help="Only the real-outputs table.")
    args = parser.parse_args()
    if args.real_only:
        real_outputs(args.workers)
        return

    data_path = SHARED_DIR / "data" / "math500.jsonl"
    if not data_path.exists():
        sys.exit(f"needs {data_path} (../shared beside the repository)")
    problems = [json.loads(line) for line in data_path.read_text().splitlines()][: args.problems]
    items = build_sweep(problems, random.Random(args.seed))
    answered = [item for item in items if item.answer_text is not None]
    distinct = len({(item.reference, answer_key(item.answer_text, item.reference)) for item in answered})

    load_before = os.getloadavg()[0]
    cpu_before = os.times()
    started = time.perf_counter()
    verdicts = score_batch(items, workers=args.workers)
    ours_s = time.perf_counter() - started
    cpu_after = os.times()  # the workers are reaped by now, so their CPU time is in `children_*`
    ours_cpu_s = sum(getattr(cpu_after, f) - getattr(cpu_before, f)
                     for f in ("user", "system", "children_user", "children_system"))
    naive_orders = {
        "budget by budget": sorted(range(len(items)), key=lambda i: (i % len(BUDGETS), i)),
        "problem by problem": list(range(len(items))),
    }
    naive_s, naive_cpu_s = {}, {}
    for name, order in naive_orders.items():
        naive, naive_s[name], naive_cpu_s[name] = run_naive(items, order)
        # budgeteval reads a box, a statement, else the last complete line (README "Answer sources"),
        # where the naive loop lets math-verify read anything: prefixes cut before their box differ.
        mismatches = [i for i, (v, n) in enumerate(zip(verdicts, naive)) if v.correct != n]
    assert not any(v.timed_out for v in verdicts)

    machine = f"{os.cpu_count()} CPUs, {platform.system()} {platform.machine()}, Python {platform.python_version()}"
    print(f"{len(problems)} problems x {SAMPLES_PER_PROBLEM} samples x {len(BUDGETS)} budgets; "
          f"{len(answered)} answered items, accuracy {sum(naive) / len(items):.3f}; {len(mismatches)} verdicts "
          f"differ from the naive loop's (cut prefixes its fallback reads and budgeteval's does not); "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| method | items | verifications | wall s | CPU s | items/s | speedup vs naive "
          f"({' / '.join(naive_s)}) | machine |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(f"naive loop, 1 process, {name}", len(answered), naive_s[name], naive_cpu_s[name]) for name in naive_s]
    rows.append((f"score_batch, {args.workers} workers", distinct, ours_s, ours_cpu_s))
    for method, verifications, seconds, cpu_seconds in rows:
        speedups = " / ".join(f"{naive / seconds:.1f}x" for naive in naive_s.values())
        print(f"| {method} | {len(items)} | {verifications} | {seconds:.1f} | {cpu_seconds:.1f} | "
              f"{len(items) / seconds:.0f} | {speedups} | {machine} |")
    real_outputs(args.workers)


if __name__ == "__main__":
    main()
