"""Regenerate the worked example in results/ from real model outputs, with the budgeteval CLI only.

Source: ../shared/generations/qwen25math_math_cot_100.jsonl — Qwen2.5-Math-7B-Instruct's own
chain-of-thought outputs on 100 MATH test problems, 8 samples each (QwenLM/Qwen2.5-Math's
evaluation example), re-tokenized with the Qwen2.5 tokenizer and scored by the math500 task's
scorer (math-verify) against the file's gold answers.

There is one model here, so the comparison is an A/A test: the same model's samples 0-3 against
its samples 4-7, two independent draws of 4 samples per problem. Any difference between them is
sampling noise; it shows how large a delta has to be before it means something at this size.

    python results/make_example.py             # writes results/*.md|csv|tex (analysis*: budgeteval analyze), results/figures/*
                                               # and results/dataset_card.md (budgeteval push --local)
    python results/make_example.py --work DIR  # where the (uncommitted) run directories go

Each step is printed as the exact `budgeteval` command it runs.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
SHARED = ROOT.parent / "shared"
SOURCE = SHARED / "generations" / "qwen25math_math_cot_100.jsonl"
TOKENIZER = SHARED / "tokenizers" / "qwen2.5"
MODEL = "Qwen2.5-Math-7B-Instruct"
BUDGETS = "128,256,384,512,768,1k,2k"
"""Lengths of these responses (Qwen2.5 tokens): median 346, 95th percentile 642, longest 2109."""

FIELDS = ["problem_id=problem_idx", "sample_idx=sample_idx", "response=response", "reference=gold",
          "question=question"]
HALVES = {"samples-0-3": range(0, 4), "samples-4-7": range(4, 8)}
LABELS = {"samples-0-3": "samples 0–3", "samples-4-7": "samples 4–7"}


def budgeteval(*args: str, stdout: Path | None = None) -> None:
    """Run one budgeteval command (printed first), optionally writing its output to a file."""
    command = [sys.executable, "-m", "budgeteval.cli", *map(str, args)]
    shown = os.path.relpath(stdout, ROOT) if stdout else None
    print("$ budgeteval " + " ".join(shlex.quote(str(a)) for a in args) + (f" > {shown}" if stdout else ""))
    result = subprocess.run(command, cwd=ROOT, check=True, text=True, capture_output=stdout is not None)
    if stdout is not None:
        stdout.write_text(result.stdout, encoding="utf-8")


def split_halves(work: Path) -> dict[str, Path]:
    """Write the source's samples 0-3 and 4-7 as two JSONL files (lines kept byte for byte)."""
    files = {name: work / f"{name}.jsonl" for name in HALVES}
    lines = {name: [] for name in HALVES}
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        sample_idx = json.loads(line)["sample_idx"]
        for name, indices in HALVES.items():
            if sample_idx in indices:
                lines[name].append(line)
    for name, path in files.items():
        path.write_text("\n".join(lines[name]) + "\n", encoding="utf-8")
    return files


def import_run(source: Path, out: Path, model: str) -> None:
    """Import and score `source` into `out`, refusing a scoring in which math-verify timed out."""
    import pandas as pd

    fields = [arg for field in FIELDS for arg in ("--field", field)]
    budgeteval("import", source, "--task", "math500", "--tokenizer", TOKENIZER, *fields, "--budgets", BUDGETS,
               "--model", model, "--workers", "2", "--out", out, "--overwrite", "--quiet")
    timed_out = int(pd.read_parquet(out / "scores.parquet", columns=["timed_out"])["timed_out"].sum())
    if timed_out:
        # A timeout counts as wrong, so a loaded machine would change the committed numbers.
        sys.exit(f"{timed_out} math-verify calls timed out while scoring {out} (a busy machine?): "
                 f"nothing was written to results/; run this again when the machine is quieter.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "example",
                        help="Folder for the run directories (not committed; default runs/example).")
    args = parser.parse_args()
    if not SOURCE.is_file() or not TOKENIZER.is_dir():
        sys.exit(f"This example needs {SOURCE} and {TOKENIZER} (the project's ../shared folder).")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    figures = RESULTS / "figures"
    figures.mkdir(parents=True, exist_ok=True)

    # 1. Three run directories: all 8 samples, and the A/A pair — samples 0-3 (the baseline) and 4-7.
    import_run(SOURCE, work / "all-8", MODEL)
    for name, path in split_halves(work).items():
        import_run(path, work / name, f"{MODEL} ({LABELS[name]})")

    # 2. The single-run report of all 8 samples.
    budgeteval("report", work / "all-8", "--k", "1,8", "--format", "markdown", stdout=RESULTS / "report.md")
    budgeteval("report", work / "all-8", "--k", "1,8", "--format", "csv", stdout=RESULTS / "metrics.csv")

    # 3. The A/A comparison, and its figures drawn from the run directories' files alone.
    pair = [f"{work / name}={LABELS[name]}" for name in HALVES]
    for fmt, suffix in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
        budgeteval("compare", *pair, "--k", "4", "--format", fmt, stdout=RESULTS / f"compare.{suffix}")
    budgeteval("plot", *pair, "-o", figures, "--format", "pdf,png,svg", stdout=work / "plot-files.txt")

    # 4. The efficiency analysis of the pair: per-problem profiles, problems gained/lost, difficulty buckets
    #    (by the baseline's pass rate at 2k), and where the tokens go after the first correct answer.
    budgeteval("analyze", *pair, "--workers", "2", "--format", "markdown", stdout=RESULTS / "analysis.md")
    budgeteval("analyze", *pair, "--workers", "2", "--format", "latex", stdout=RESULTS / "analysis.tex")
    for table in ("profile", "gains", "buckets", "trace"):
        budgeteval("analyze", *pair, "--workers", "2", "--format", "csv", "--table", table,
                   stdout=RESULTS / f"analysis_{table}.csv")
    budgeteval("analyze", *pair, "--table", "buckets", "--buckets", "0,0.25,0.5,0.75,1", "--format", "markdown",
               stdout=RESULTS / "analysis_buckets4.md")
    budgeteval("plot", *pair, "-o", figures, "--format", "pdf,png,svg", "--kind",
               "pareto,pass_at_k,difficulty,after_first_correct", "--pass-budgets", "256,512,2k",
               stdout=work / "analysis-plot-files.txt")

    # 5. The pair as a Hugging Face dataset folder (nothing uploaded): its card is results/dataset_card.md.
    dataset = work / "dataset"
    budgeteval("push", *pair, "--repo", "my-org/qwen25-math-budgets", "--local", dataset, stdout=work / "push.txt")
    (RESULTS / "dataset_card.md").write_bytes((dataset / "README.md").read_bytes())


if __name__ == "__main__":
    main()
