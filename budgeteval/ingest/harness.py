"""Read another harness's per-sample output into the frame `budgeteval.ingest.generations.import_frame` takes.

- `lm-eval`: lm-eval's `--log_samples` file (`samples_<task>_<date>.jsonl`): one row per document
  and filter, with `doc_id`, `doc`, `target`, `arguments` (the prompt and the generation kwargs,
  `max_gen_toks` among them), `resps` (the raw responses, one per repeat) and `filtered_resps`.
  The rows of the first filter are read (every filter repeats the same responses).
- `lighteval`: lighteval's details parquet (`details_<task>_<date>.parquet`): one row per document
  with the `doc` (`query`, `choices`, `gold_index`, `id`, `generation_size`, …), the
  `model_response` (`input`, `text`: one per sample, …) and the `metric` values.

Responses are re-tokenized with the given tokenizer; a response whose token count reaches the
generation limit the file records (`max_gen_toks`, `generation_size`; `--max-tokens` overrides it)
counts as cut by it. With `--task lm-eval:NAME` an lm-eval file is scored by lm-eval's own filters
and metric over the documents it holds; with a budgeteval task the file's target is the reference.
Such a run has no per-request seeds and its responses already had the other harness's stop strings
applied, so a budget above the recorded limit, or a stop string the model would have run past,
cannot be replayed.
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from budgeteval.errors import UserError

FORMATS = ("lm-eval", "lighteval")
"""`--format` values this module reads."""


def _unique_limit(limits: set, path: Path, field: str) -> int | None:
    limits = {int(limit) for limit in limits if limit is not None}
    if len(limits) > 1:
        raise UserError(f"{path} records several generation limits ({', '.join(map(str, sorted(limits)))} in "
                        f"{field}): import each limit's samples separately, or pass --max-tokens.")
    return limits.pop() if limits else None


def read_lm_eval_samples(path: Path) -> tuple[pd.DataFrame, int | None]:
    """lm-eval's `--log_samples` file -> (one row per response, the recorded `max_gen_toks` or None)."""
    rows, limits, first_filter = [], set(), None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise UserError(f"Cannot read lm-eval samples file {path}: {error.strerror}.") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            sample = json.loads(line)
            first_filter = sample.get("filter") if first_filter is None else first_filter
            if sample.get("filter") != first_filter:
                continue
            arguments = sample["arguments"]["gen_args_0"]
            prompt, gen_kwargs = arguments["arg_0"], arguments.get("arg_1") or {}
            responses = sample["resps"][0]
        except (ValueError, KeyError, TypeError, IndexError):
            raise UserError(f"{path} line {number} is not an lm-eval --log_samples record (doc_id, doc, target, "
                            f"arguments, resps): pass the samples_<task>_<date>.jsonl lm-eval wrote.") from None
        limits.add(gen_kwargs.get("max_gen_toks"))
        for sample_idx, response in enumerate(responses):
            rows.append({"problem_id": str(sample["doc_id"]), "sample_idx": sample_idx, "response": str(response),
                         "prompt": str(prompt), "question": str(prompt), "target": str(sample["target"]),
                         "doc_id": int(sample["doc_id"]), "doc": sample["doc"]})
    if not rows:
        raise UserError(f"{path} holds no lm-eval samples.")
    return pd.DataFrame(rows), _unique_limit(limits, path, "arguments.max_gen_toks")


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    return [value]


def read_lighteval_details(path: Path) -> tuple[pd.DataFrame, int | None]:
    """lighteval's details parquet -> (one row per response, the recorded `generation_size` or None)."""
    try:
        details = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise UserError(f"Cannot read lighteval details file {path} as parquet: {error}.") from None
    if not {"doc", "model_response"} <= set(details.columns):
        raise UserError(f"{path} has no doc and model_response columns: pass the details_<task>_<date>.parquet "
                        f"lighteval wrote (columns: {', '.join(map(str, details.columns))}).")
    rows, limits, seen = [], set(), set()
    for position, (doc, response) in enumerate(zip(details["doc"], details["model_response"])):
        problem_id = str(doc.get("id") or "") or str(position)
        if problem_id in seen:
            raise UserError(f"{path} repeats doc id {problem_id!r}; budgeteval needs one row per document.")
        seen.add(problem_id)
        choices, gold = _as_list(doc.get("choices")), _as_list(doc.get("gold_index"))
        reference = str(choices[int(gold[0])]) if choices and gold else ""
        prompt = response.get("input")
        prompt = prompt if isinstance(prompt, str) else json.dumps(_as_list(prompt), default=str)
        limits.add(doc.get("generation_size"))
        for sample_idx, text in enumerate(_as_list(response.get("text"))):
            rows.append({"problem_id": problem_id, "sample_idx": sample_idx, "response": str(text), "prompt": prompt,
                         "question": str(doc.get("query") or ""), "target": reference})
    if not rows:
        raise UserError(f"{path} holds no lighteval responses.")
    return pd.DataFrame(rows), _unique_limit(limits, path, "doc.generation_size")


def import_harness_file(path: Path, file_format: str, task_name: str, tokenizer_name: str, out: Path,
                        budgets: Sequence[int], model: str | None = None, max_tokens: int | None = None,
                        data_files: dict[str, str] | None = None, think_end: str | None = None,
                        overwrite: bool = False, task_options: Sequence[tuple[str, str, str]] = (),
                        cut_tolerance: float | None = None, unfinished_text: str = "cut") -> Path:
    """Write a run directory holding another harness's responses (`file_format` in `FORMATS`)."""
    from budgeteval.ingest.generations import DEFAULT_CUT_TOLERANCE, import_frame

    cut_tolerance = DEFAULT_CUT_TOLERANCE if cut_tolerance is None else cut_tolerance
    from budgeteval.tasks.loading import group_task_options, load_task

    if file_format not in FORMATS:
        raise UserError(f"--format {file_format!r}: use one of table, {', '.join(FORMATS)}.")
    if not Path(path).is_file():
        raise UserError(f"{file_format} file {path} does not exist.")
    reader = read_lm_eval_samples if file_format == "lm-eval" else read_lighteval_details
    frame, recorded = reader(Path(path))
    max_tokens = max_tokens or recorded
    if max_tokens is None:
        raise UserError(f"{path} does not record its generation limit: pass --max-tokens with the limit it was "
                        f"generated with.")
    if max(budgets) > max_tokens:
        raise UserError(f"Budget {max(budgets)} exceeds the {max_tokens} tokens {path} was generated with: "
                        f"pass --budgets up to {max_tokens}.")
    task = load_task(task_name, data_files, group_task_options(task_options))
    if task.lm_eval is not None:
        from budgeteval.tasks.lm_eval import problem_reference

        if file_format != "lm-eval":
            raise UserError(f"Task {task_name} is an lm-eval task: it reads lm-eval's --log_samples files "
                            f"(--format lm-eval); score {file_format} output with a budgeteval task.")
        frame["reference"] = [problem_reference(task.lm_eval, task.scorer, doc_id, doc, target)
                              for doc_id, doc, target in zip(frame["doc_id"], frame["doc"], frame["target"])]
    else:
        frame["reference"] = frame["target"]
    frame = frame.drop(columns=[column for column in ("doc", "doc_id", "target") if column in frame.columns])
    return import_frame(frame, path, task_name, tokenizer_name, out, {}, budgets, model=model, max_tokens=max_tokens,
                        data_files=data_files, think_end=think_end, overwrite=overwrite, task_options=task_options,
                        cut_tolerance=cut_tolerance, unfinished_text=unfinished_text)
