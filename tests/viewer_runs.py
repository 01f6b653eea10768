"""Run directories from response texts, written through the real writers and scored by `evaluate_run`.

For the viewer's tests: the texts are tokenized with a real tokenizer (its saved copy goes into the
run, as `run` and `import` do), the problems file may carry extra columns (groups such as `level`),
and forced mode gets stored continuations (the forcing string's ids and an answer) for every
sample the budget cuts, so scoring replays forced mode exactly as after `budgeteval run --modes forced`.
"""

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from budgeteval.generation.config import RunConfig
from budgeteval.rundir.manifest import Manifest, ModesSection, TaskEntry, write_manifest
from budgeteval.rundir.store import CONTINUATIONS, ContinuationRecord, GenerationRecord, write_shard
from budgeteval.scoring.evaluate import evaluate_run
from budgeteval.scoring.replay import truncate

THINKING_PROMPT = "<|im_start|>user\nQuestion<|im_end|>\n<|im_start|>assistant\n<think>\n"
"""A Qwen3 prompt whose response starts inside the thinking block."""


def write_text_run(run_dir: Path, tokenizer, task: str, problems: Sequence[dict], responses: dict,
                   budgets: Sequence[int], model: str = "org/model", prompt: str = THINKING_PROMPT,
                   think_end: str | None = "</think>", forced_answer: str | None = None,
                   force_string: str = "\n</think>\n\nFinal answer: ") -> Path:
    """Write and score a run: `problems` rows (problem_id, question, reference, any extra columns),
    `responses[problem_id] = [text, ...]` (one per sample, all finished with `stop`).

    With `forced_answer`, the run also has forced mode: a sample cut at a budget continues with
    `force_string` and then `forced_answer`.
    """
    run_dir = Path(run_dir)
    max_tokens = max(budgets)
    records = []
    for problem in problems:
        for sample_idx, text in enumerate(responses[problem["problem_id"]]):
            ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
            records.append(GenerationRecord(
                task=task, problem_id=problem["problem_id"], sample_idx=sample_idx, prompt=prompt,
                prompt_num_tokens=len(tokenizer(prompt, add_special_tokens=False)["input_ids"]),
                token_ids=ids[:max_tokens], text=text, finish_reason="stop" if len(ids) <= max_tokens else "length",
                seed=sample_idx, max_tokens=max_tokens, model=model, backend="test"))
    write_shard(run_dir, task, records)
    columns = list(dict.fromkeys(key for problem in problems for key in problem))
    table = pa.Table.from_pylist([{column: problem.get(column) for column in columns} for problem in problems])
    (run_dir / "problems").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, run_dir / "problems" / f"{task}.parquet")
    tokenizer.save_pretrained(str(run_dir / "tokenizer"))
    modes = ["cutoff"]
    if forced_answer is not None:
        modes.append("forced")
        force_ids = tuple(tokenizer(force_string, add_special_tokens=False)["input_ids"])
        answer_ids = tuple(tokenizer(forced_answer, add_special_tokens=False)["input_ids"])
        for budget in budgets:
            continuations = []
            for record in records:
                finished = truncate(record.token_ids, record.finish_reason, budget).finished
                continuations.append(ContinuationRecord(
                    task=task, problem_id=record.problem_id, sample_idx=record.sample_idx, budget=budget,
                    continued=not finished, force_token_ids=() if finished else force_ids, force_string=force_string,
                    token_ids=() if finished else answer_ids, text="" if finished else forced_answer,
                    finish_reason="stop", seed=record.seed, max_tokens=len(answer_ids)))
            write_shard(run_dir, task, continuations, kind=CONTINUATIONS)
    write_manifest(run_dir, Manifest(
        kind="test", config=RunConfig(model=model, tasks=(task,), out=str(run_dir), budgets=tuple(sorted(budgets))),
        tasks={task: TaskEntry(scorer="math", version=1)}, think_end=think_end,
        modes=ModesSection(modes=tuple(modes), force_string=force_string if forced_answer is not None else None)))
    evaluate_run(run_dir, budgets=budgets, workers=1, progress=False, modes=modes, bootstrap=0)
    return run_dir
