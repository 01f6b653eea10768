"""Benchmark: the generation stage of `budgeteval run` vs a bare `LLM.generate` on the same requests.

One live engine serves both, so engine settings are identical; the requests are identical too
(the harness's own prompts, per-request seeds, n and sampling). Alternating, `--repeats` times:
  raw LLM.generate  — TokensPrompt + SamplingParams built from the harness's requests, one call;
  budgeteval run    — `runner.generate_missing` into a fresh run directory: request building,
                      the backend call, converting outputs, writing the parquet shards.
Engine start, tokenizer load and prompt rendering are outside both. Prints the median and best
wall time of each and the ratio, and checks both produced the same token ids. Defaults use the
tiny random Qwen3 model from tests/ on the AIME 2025 copy in ../shared (a CPU-only machine):

    python bench/engine_overhead.py --problems 30 --n 8 --max-tokens 2048 --repeats 5
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def machine() -> str:
    """CPU model and core count (or the GPU name when vLLM runs on one)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{name}, {os.cpu_count()} cores{load}"


def main() -> None:
    from sweep_checks import SAMPLING, stored_samples, sweep_config
    from tiny_model import build_tiny_qwen3

    from budgeteval.generation.backends.vllm_backend import VLLMBackend
    from budgeteval.generation.config import EngineOptions
    from budgeteval.sweep.runner import derive_seed, generate_missing, load_tokenizer, prepare_tasks, resolve_tasks

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="checkpoint (default: the tiny test model, built on the fly)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "aime2025.jsonl"))
    parser.add_argument("--problems", type=int, default=30)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="engine-overhead-"))
    model = Path(args.model) if args.model else build_tiny_qwen3(ROOT.parent / "shared" / "tokenizers" / "qwen3",
                                                                 work / "tiny-qwen3")
    config = sweep_config(model, work / "run", (args.max_tokens,), Path(args.data), n=args.n, limit=args.problems,
                          engine=EngineOptions(dtype=args.dtype))
    tokenizer = load_tokenizer(str(model))
    prepared = prepare_tasks(config, resolve_tasks(config), tokenizer)
    backend = VLLMBackend(str(model), str(model), config.engine)

    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    item = prepared[0]
    size = config.problems_per_shard
    shards = [list(range(start, min(start + size, len(item.problems)))) for start in range(0, len(item.problems), size)]

    def raw() -> dict:
        """The same calls the harness makes (one per shard), straight to LLM.generate."""
        ids = {}
        for shard in shards:
            prompts = [TokensPrompt(prompt_token_ids=list(item.prompt_token_ids[index])) for index in shard]
            params = [SamplingParams(n=config.n, seed=derive_seed(config.seed, item.task.name,
                                                                  item.problems[index].problem_id),
                                     temperature=SAMPLING.temperature, top_p=SAMPLING.top_p, top_k=SAMPLING.top_k,
                                     min_p=SAMPLING.min_p, max_tokens=config.max_budget) for index in shard]
            for index, output in zip(shard, backend.llm.generate(prompts, params, use_tqdm=False)):
                for completion in output.outputs:
                    ids[(item.problems[index].problem_id, completion.index)] = list(completion.token_ids)
        return ids

    def harness(repeat: int) -> dict:
        run_dir = work / f"harness-{repeat}"
        generate_missing(config, prepared, run_dir, backend, progress=False)
        return {key: ids for key, (ids, _) in stored_samples(run_dir).items()}

    raw()  # warm-up: the first call pays one-off costs (allocations, kernel selection)
    times = {"raw LLM.generate": [], "budgeteval run (generation stage)": []}
    reference = None
    for repeat in range(args.repeats):
        for method in times:
            start = time.perf_counter()
            ids = raw() if method.startswith("raw") else harness(repeat)
            times[method].append(time.perf_counter() - start)
            reference = reference or ids
            assert ids == reference, f"{method} produced other token ids than the first call"
    facts = backend.describe()
    backend.close()

    tokens = sum(len(ids) for ids in reference.values())
    print(f"\nmachine: {machine()}; vllm {facts['vllm_version']} {facts['device']}, dtype {facts['dtype']}, "
          f"chunked prefill {facts['enable_chunked_prefill']}, max_num_batched_tokens {facts['max_num_batched_tokens']}; "
          f"model {model.name}; {len(item.problems)} problems x n={config.n}, max_tokens {config.max_budget}, "
          f"{tokens} generated tokens per call; {args.repeats} alternating repeats\n")
    print("| method | median wall s | best wall s | median vs raw |")
    print("| --- | ---: | ---: | ---: |")
    base = statistics.median(times["raw LLM.generate"])
    for method, seconds in times.items():
        print(f"| {method} | {statistics.median(seconds):.3f} | {min(seconds):.3f} | "
              f"{statistics.median(seconds) / base:.3f}x |")


if __name__ == "__main__":
    main()
