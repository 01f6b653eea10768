"""Benchmark: one replayed budget sweep vs re-generating at every budget, in cutoff and forced mode.

Runs the same sweep four ways on one live engine (engine start excluded from all):
  cutoff replay      — generate once at the largest budget, replay the others (`budgeteval run`);
  cutoff per-budget  — a separate generation with max_tokens=B for every budget B (most scripts);
  forced replay      — the one generation plus forced answer continuations at every budget
                       (`budgeteval run --modes forced`);
  forced per-budget  — for every B, generate with max_tokens=B and force an answer from that
                       (what s1 / ThinkPrune-style scripts do).
Prints generated tokens, generation wall time, and their ratios. Defaults use the tiny random
Qwen3 model from tests/ on the AIME 2025 copy in ../shared, so it runs on a CPU-only machine:

    python bench/sweep_cost.py --backend vllm --problems 10 --n 4 --budgets 32,64,128,256,512
"""

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def main() -> None:
    from sweep_checks import RecordingBackend, sweep_config
    from tiny_model import build_tiny_qwen3

    from budgeteval.generation.budgets import parse_budgets
    from budgeteval.generation.config import EngineOptions
    from budgeteval.sweep.runner import run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["vllm", "hf"], default="vllm")
    parser.add_argument("--model", help="checkpoint (default: the tiny test model, built on the fly)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "aime2025.jsonl"))
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--budgets", default="32,64,128,256,512")
    parser.add_argument("--answer-tokens", type=int, default=32)
    args = parser.parse_args()
    budgets = parse_budgets(args.budgets)

    work = Path(tempfile.mkdtemp(prefix="sweep-cost-"))
    model = Path(args.model) if args.model else build_tiny_qwen3(ROOT.parent / "shared" / "tokenizers" / "qwen3",
                                                                 work / "tiny-qwen3")
    options = EngineOptions(dtype="float32", enforce_eager=True)
    if args.backend == "vllm":
        from budgeteval.generation.backends.vllm_backend import VLLMBackend
        engine = VLLMBackend(str(model), str(model), options)
    else:
        from budgeteval.generation.backends.hf_backend import HFBackend
        engine = HFBackend(str(model), str(model), options)

    from budgeteval.generation.config import ModeSettings

    def sweep(name, budget_list, modes=("cutoff",)):
        counter = RecordingBackend(engine)
        config = sweep_config(model, work / name, budget_list, Path(args.data), backend=args.backend, n=args.n,
                              limit=args.problems,
                              modes=ModeSettings(modes=modes, answer_tokens=args.answer_tokens))
        run(config, progress=False, backend=counter)
        return counter.generated_tokens, counter.seconds

    def per_budget(prefix, modes):
        results = [sweep(f"{prefix}{budget}", (budget,), modes) for budget in budgets]
        return sum(tokens for tokens, _ in results), sum(seconds for _, seconds in results)

    rows = [
        ("cutoff", f"replay (generate once at {max(budgets)})", sweep("replay", budgets)),
        ("cutoff", f"re-generate per budget ({len(budgets)} runs)", per_budget("max", ("cutoff",))),
        ("forced", f"replay + forced answers (A={args.answer_tokens})", sweep("forced", budgets, ("forced",))),
        ("forced", f"re-generate per budget + force ({len(budgets)} runs)", per_budget("forced-max", ("forced",))),
    ]

    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs; backend {args.backend}; model {model.name}; "
          f"{args.problems} problems x n={args.n}; budgets {','.join(map(str, budgets))}\n")
    print("| mode | method | generated tokens | generation wall s | tokens vs replay | time vs replay |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    baseline = {}
    for mode, method, (tokens, seconds) in rows:
        base_tokens, base_seconds = baseline.setdefault(mode, (tokens, seconds))
        print(f"| {mode} | {method} | {tokens} | {seconds:.1f} | {tokens / base_tokens:.2f}x | "
              f"{seconds / base_seconds:.2f}x |")
    engine.close()


if __name__ == "__main__":
    main()
