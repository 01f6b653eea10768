"""Benchmark: one decode step of vLLM's CPU build in bfloat16 vs float32 (why `auto` means float32 here).

For each dtype an engine is started with budgeteval's CPU settings and asked for `--seqs`
sequences of `--steps` tokens (ignore_eos, so every step decodes all of them) and of 1 token;
the difference divided by steps - 1 is the time of one decode step. Prints the machine, whether
it has native bf16 (`budgeteval.generation.backends.vllm_backend.cpu_has_native_bf16`) and the ratio:

    python bench/cpu_dtype.py --seqs 32 --steps 64
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")


def main() -> None:
    from engine_overhead import machine
    from tiny_model import build_tiny_qwen3

    from budgeteval.generation.backends.vllm_backend import VLLMBackend, cpu_has_native_bf16
    from budgeteval.generation.config import EngineOptions

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint (default: the tiny test model, built on the fly)")
    parser.add_argument("--seqs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    args = parser.parse_args()
    model = Path(args.model) if args.model else build_tiny_qwen3(ROOT.parent / "shared" / "tokenizers" / "qwen3",
                                                                 Path(tempfile.mkdtemp()) / "tiny-qwen3")
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    prompts = [TokensPrompt(prompt_token_ids=list(range(1000 + 5 * i, 1100 + 5 * i))) for i in range(args.seqs)]

    def wall(llm, max_tokens: int) -> float:
        params = SamplingParams(temperature=1.0, seed=0, max_tokens=max_tokens, ignore_eos=True)
        start = time.perf_counter()
        llm.generate(prompts, params, use_tqdm=False)
        return time.perf_counter() - start

    rows = []
    for dtype in args.dtypes.split(","):
        backend = VLLMBackend(str(model), str(model), EngineOptions(dtype=dtype))
        try:
            wall(backend.llm, 2)  # warm-up
            step_s = (wall(backend.llm, args.steps) - wall(backend.llm, 1)) / (args.steps - 1)
            rows.append((backend.describe()["dtype"], step_s))
        finally:
            backend.close()
    print(f"\nmachine: {machine()}; native bf16: {cpu_has_native_bf16()}; model {model.name}; "
          f"{args.seqs} sequences, {args.steps} decode steps\n")
    print("| dtype | decode step ms | vs float32 |")
    print("| --- | ---: | ---: |")
    base = dict(rows).get("torch.float32", rows[-1][1])
    for dtype, step_s in rows:
        print(f"| {dtype} | {step_s * 1000:.1f} | {step_s / base:.2f}x |")


if __name__ == "__main__":
    main()
