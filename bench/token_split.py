"""Benchmark: the thinking/answer split of every score row, against decoding the same rows.

Scoring decodes each replayed row's ids (`budgeteval.scoring.evaluate`, window by window); the split
(`_token_counts`, `budgeteval.scoring.replay.count_tokens`) makes one more pass over the same ids.
This times both on a sweep shaped like a thinking model's: `--problems` x 8 samples of random Qwen3
ids (lengths uniform in 1k..16k, the `</think>` id at a random point in 70% of them), replayed at
2k, 4k, 8k and 16k in cutoff mode and in forced mode (every cut sample forced: the forcing string's
ids and a 200-token answer, assembled per row as scoring does). Decoding uses the run's decoder (`load_decoder` on
`../shared/tokenizers/qwen3`), as scoring does. Seeded.

    .venv/bin/python bench/token_split.py [--problems 50]
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from budgeteval.generation.tokenizer import load_decoder
from budgeteval.scoring.evaluate import _cutoff_rows, _decode_all, _forced_rows, _Texts, _token_counts
from budgeteval.scoring.replay import marker_ids

SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"
BUDGETS = (2048, 4096, 8192, 16384)
PROMPT = "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=50)
    args = parser.parse_args()
    decoder = load_decoder(str(SHARED_DIR / "tokenizers" / "qwen3"))
    end_ids = marker_ids(decoder, "</think>")
    rng = np.random.default_rng(0)
    samples = []
    for problem in range(args.problems):
        for sample_idx in range(8):
            length = int(rng.integers(1024, 16384))
            ids = rng.integers(1000, 100000, size=length).astype(np.int32)
            if rng.random() < 0.7:
                ids[int(rng.integers(0, length))] = end_ids[0]
            samples.append({"problem_id": str(problem), "sample_idx": sample_idx, "prompt": PROMPT, "token_ids": ids,
                            "finish_reason": "stop"})
    force_ids = decoder("\n</think>\n\n**Final Answer**\n", add_special_tokens=False)["input_ids"]
    continuations = {(sample["problem_id"], sample["sample_idx"], budget):
                     {"force_token_ids": force_ids, "token_ids": rng.integers(1000, 100000, size=200)}
                     for sample in samples for budget in BUDGETS}
    print(f"{platform.processor() or platform.machine()}; {args.problems} problems x 8 samples at "
          f"{', '.join(str(b) for b in BUDGETS)}")
    print("| mode | rows | M tokens counted | split s | split M tokens/s | decode s | decode M tokens/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in ("cutoff", "forced"):
        texts = _Texts()
        rows = (_cutoff_rows(samples, BUDGETS, "</think>", texts) if mode == "cutoff" else
                _forced_rows(samples, continuations, BUDGETS, "</think>", texts, "bench", Path(".")))
        tokens = sum(row.num_tokens for row in rows)
        started = time.perf_counter()
        counts = _token_counts(rows, texts, end_ids)
        split_s = time.perf_counter() - started
        assert len(counts) == len(rows)
        started = time.perf_counter()
        keys = list(dict.fromkeys(row.text_key for row in rows))
        for start in range(0, len(keys), 64):
            _decode_all(decoder, [texts.ids(key) for key in keys[start:start + 64]])
        decode_s = time.perf_counter() - started
        print(f"| {mode} | {len(rows)} | {tokens / 1e6:.1f} | {split_s:.2f} | {tokens / split_s / 1e6:.0f} | "
              f"{decode_s:.2f} | {tokens / decode_s / 1e6:.1f} |")

if __name__ == "__main__":
    main()
