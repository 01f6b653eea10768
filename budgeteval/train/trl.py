"""TRL / transformers adapter: budget curves logged during training, and length-aware `reward_funcs`.

`BudgetEvalCallback` is a `transformers.TrainerCallback`. Every `every_steps` optimizer steps (and
at each `on_evaluate`) it generates for a fixed evaluation subset (the first `limit` problems of
each budgeteval task, `n` samples each, per-request seeds derived as in `budgeteval run`) at the
largest budget, replays every response at each budget, scores with the task's scorer
(`budgeteval.scoring.evaluate.score_samples`, the code `budgeteval score` runs) and logs
`budget/<task>/<B>/mean@k`, `.../pass@k`, `.../length_mean` and `.../truncation_rate` through
`transformers.Trainer.log`, so they reach W&B, TensorBoard and `trainer.state.log_history` like
the trainer's own metrics. It also appends them to `<output_dir>/budgeteval/metrics_by_step.csv`
(`budgeteval plot DIR --by step`).

Which engine generates, chosen from the trainer:
- TRL with `use_vllm=True`, `vllm_mode="colocate"`: the trainer's own `vllm.LLM`
  (`trainer.vllm_generation.llm`), after pushing the current weights the way TRL does before a
  rollout (`sync_weights`, marking `_last_loaded_step`, waking and re-sleeping a sleeping engine);
  every rank generates the same requests (tensor-parallel groups need all their ranks).
- TRL with `vllm_mode="server"`: the `trl vllm-serve` server (an OpenAI-compatible vLLM server)
  through budgeteval's `openai` backend, after the same weight sync; the main process generates.
- otherwise: the policy model itself (`model.generate`, one seeded call per sample, the `hf`
  backend) in eval mode, with torch's RNG state saved and restored, so the training run's own
  random stream is unchanged; the main process generates. Not with FSDP or DeepSpeed ZeRO-3
  sharded weights (use vLLM there).
Only the main process scores, logs and writes.

How the callback reaches the trainer: hooks receive `model` and `processing_class` (the
tokenizer) as keyword arguments, which the callback uses, but not the trainer, which logging and
the vLLM engine need. Pass it: `BudgetEvalCallback(..., trainer=trainer)`, or
`trainer.add_callback(BudgetEvalCallback(...).attach(trainer))`.

`reward_function(name, ...)` builds a TRL reward function from `budgeteval.train.rewards`:
correctness from budgeteval's scorers on the completion text, length = the completion's token
ids, groups = completions of the same prompt; a masked rollout returns None (see the rewards
module for what TRL does with it).

Not here: any change to how the trainer generates or trains. Importing this module imports
transformers (the callback's base class); TRL and vLLM are never imported by budgeteval (it reads
the trainer's attributes), and torch only when the policy generates.
"""

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from transformers import TrainerCallback

from budgeteval.errors import UserError
from budgeteval.generation.backends.base import GenerationRequest, SamplingConfig
from budgeteval.generation.seeds import derive_seed
from budgeteval.tasks.prompts import PromptSettings


@dataclass(frozen=True)
class _EvalTask:
    """One task's fixed evaluation subset, rendered with the trainer's tokenizer."""

    name: str
    """Task name (the middle of every logged key)."""
    scorer: str
    """Scorer registry name."""
    problem_ids: tuple[str, ...]
    """Problem ids of the subset, in task order."""
    prompts: tuple[str, ...]
    """Rendered prompt texts."""
    prompt_token_ids: tuple[tuple[int, ...], ...]
    """Their token ids (what the engine receives)."""
    references: dict
    """problem_id -> reference."""


class BudgetEvalCallback(TrainerCallback):
    """Evaluate the policy at several token budgets during training and log the budget curves."""

    def __init__(self, tasks: Sequence[str], budgets: Sequence[int | str], n: int = 4,
                 every_steps: int | None = 100, limit: int | None = 32, *, trainer=None,
                 data_files: dict[str, str] | None = None, seed: int = 0,
                 sampling: SamplingConfig = SamplingConfig(), prompt_settings: PromptSettings = PromptSettings(),
                 think_end: str | None = "auto", ks: Sequence[int] | None = None, workers: int = 2,
                 eval_on_start: bool = False, write_table: bool = True):
        """
        tasks: budgeteval task names or YAML paths; budgets: token budgets (`2k` or 2048);
        n: samples per problem; every_steps: evaluate when global_step is a multiple (None: only
        at on_evaluate); limit: the first `limit` problems of each task (None: all);
        data_files: task name -> local JSONL/parquet (as `--data`); seed: run seed for the
        per-request seeds; think_end: end-of-thinking marker, "auto" = the tokenizer's own,
        None = score whole responses; ks: k values to log (default 1 and n); workers: scoring
        processes; eval_on_start: also evaluate before the first step (a step-0 baseline);
        write_table: append to `<args.output_dir>/budgeteval/metrics_by_step.csv`.
        """
        from budgeteval.generation.budgets import parse_budgets

        if not tasks:
            raise UserError("BudgetEvalCallback needs at least one task.")
        if every_steps is not None and every_steps < 1:
            raise UserError(f"every_steps must be a positive number of steps (or None), got {every_steps}.")
        if n < 1:
            raise UserError(f"n must be at least 1 sample per problem, got {n}.")
        self.tasks = tuple(tasks)
        self.budgets = parse_budgets(",".join(str(budget) for budget in budgets))
        self.n = int(n)
        self.every_steps = every_steps
        self.limit = limit
        self.data_files = dict(data_files or {})
        self.seed = int(seed)
        self.sampling = sampling
        self.prompt_settings = prompt_settings
        self.think_end_option = think_end
        self.ks = sorted({1, self.n} if ks is None else {int(k) for k in ks})
        if self.ks[-1] > self.n or self.ks[0] < 1:
            raise UserError(f"ks must lie between 1 and n={self.n}, got {self.ks}.")
        self.workers = workers
        self.eval_on_start = eval_on_start
        self.write_table = write_table
        self.trainer = None
        self._eval_tasks: list[_EvalTask] | None = None
        self._think_end: str | None = None
        self._server_backend = None
        self._last_step: int | None = None
        if trainer is not None:
            self.attach(trainer)

    def attach(self, trainer) -> "BudgetEvalCallback":
        """Give the callback its trainer (for logging and the trainer's vLLM engine); returns the callback."""
        _refuse_sharded_policy_generation(trainer)
        self.trainer = trainer
        return self

    # --- transformers hooks ----------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self._require_trainer()
        if self.eval_on_start:
            self._evaluate(args, state, control, kwargs.get("model"), kwargs.get("processing_class"))

    def on_step_end(self, args, state, control, **kwargs):
        if self.every_steps and state.global_step % self.every_steps == 0:
            self._evaluate(args, state, control, kwargs.get("model"), kwargs.get("processing_class"))

    def on_evaluate(self, args, state, control, **kwargs):
        self._evaluate(args, state, control, kwargs.get("model"), kwargs.get("processing_class"))

    # --- one evaluation --------------------------------------------------------------------

    def _require_trainer(self):
        if self.trainer is None:
            raise UserError(
                "BudgetEvalCallback has no trainer: pass trainer=... or use "
                "trainer.add_callback(BudgetEvalCallback(...).attach(trainer)), so it can log through the trainer."
            )
        return self.trainer

    def _evaluate(self, args, state, control, model, tokenizer) -> None:
        trainer = self._require_trainer()
        if state.global_step == self._last_step:  # on_step_end and on_evaluate at the same step
            return
        self._last_step = state.global_step
        tokenizer = tokenizer if tokenizer is not None else trainer.processing_class
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        eval_tasks = self._prepare(tokenizer)
        requests = [
            [GenerationRequest(key=f"{task.name}/{pid}", prompt_token_ids=ids, n=self.n,
                               seed=derive_seed(self.seed, task.name, pid), max_tokens=max(self.budgets))
             for pid, ids in zip(task.problem_ids, task.prompt_token_ids)]
            for task in eval_tasks
        ]
        flat = [request for task_requests in requests for request in task_requests]
        outputs = self._generate(trainer, state, model, tokenizer, flat)
        if outputs is None:  # not the main process
            return
        metrics = self._score(eval_tasks, requests, outputs, tokenizer)
        logs = metrics_to_logs(metrics)
        # Trainer.log of the base class: appends to state.log_history and calls every callback's on_log
        # (W&B, TensorBoard, ...). TRL's GRPOTrainer.log would also flush its own averaged metrics early.
        from transformers import Trainer

        # The handler's on_log clears control.should_log, which would cancel the trainer's own log of this step.
        should_log = control.should_log
        Trainer.log(trainer, dict(logs))
        control.should_log = trainer.control.should_log = should_log
        if self.write_table and getattr(args, "output_dir", None):
            from budgeteval.report.steps import append_step_metrics

            append_step_metrics(Path(args.output_dir) / "budgeteval", state.global_step, metrics)

    def _prepare(self, tokenizer) -> list[_EvalTask]:
        """Load the tasks and render their prompts once (the subset stays fixed for the whole run)."""
        if self._eval_tasks is not None:
            return self._eval_tasks
        from budgeteval.tasks.loading import load_problems, load_task
        from budgeteval.tasks.prompts import default_think_end, encode_prompt, render_prompt

        self._think_end = default_think_end(tokenizer) if self.think_end_option == "auto" else (
            self.think_end_option or None)
        eval_tasks = []
        for name in self.tasks:
            task = load_task(name, self.data_files)
            problems = load_problems(task, self.limit)
            prompts = [render_prompt(task, problem, tokenizer, self.prompt_settings) for problem in problems]
            eval_tasks.append(_EvalTask(
                name=task.name, scorer=task.scorer,
                problem_ids=tuple(problem.problem_id for problem in problems),
                prompts=tuple(prompts),
                prompt_token_ids=tuple(tuple(encode_prompt(tokenizer, prompt)) for prompt in prompts),
                references={problem.problem_id: problem.reference for problem in problems},
            ))
        self._eval_tasks = eval_tasks
        return eval_tasks

    def _generate(self, trainer, state, model, tokenizer, requests):
        """Samples for every request, on the main process; None on the other ranks."""
        accelerator = trainer.accelerator
        generation = getattr(trainer, "vllm_generation", None) if getattr(trainer, "use_vllm", False) else None
        if generation is not None:
            if getattr(trainer, "_last_loaded_step", None) != state.global_step:
                generation.sync_weights()  # every rank: the weight gathers are collective
                trainer._last_loaded_step = state.global_step
            if generation.mode == "colocate":
                outputs = _generate_colocated(generation, requests, self.sampling)
                return outputs if accelerator.is_main_process else None
            if not accelerator.is_main_process:
                return None
            if self._server_backend is None:
                self._server_backend = _server_backend(generation, tokenizer)
            return self._server_backend.generate(requests, self.sampling)
        if not accelerator.is_main_process:
            return None
        policy = accelerator.unwrap_model(trainer.model_wrapped if model is None else model)
        return _generate_with_policy(policy, tokenizer, requests, self.sampling)

    def _score(self, eval_tasks, requests, outputs, tokenizer) -> pd.DataFrame:
        from budgeteval.scoring.evaluate import score_samples
        from budgeteval.scoring.metrics import compute_metrics

        frames, position = [], 0
        for task, task_requests in zip(eval_tasks, requests):
            samples = []
            for prompt, pid, _request in zip(task.prompts, task.problem_ids, task_requests):
                for sample_idx, output in enumerate(outputs[position]):
                    samples.append({"problem_id": pid, "sample_idx": sample_idx, "prompt": prompt,
                                    "token_ids": list(output.token_ids), "finish_reason": output.finish_reason})
                position += 1
            frames.append(score_samples(task.name, samples, task.references, task.scorer, self.budgets, tokenizer,
                                        self._think_end, self.workers))
        return compute_metrics(pd.concat(frames, ignore_index=True), self.ks)


LOGGED_METRICS = ("mean", "pass", "length_mean", "truncation_rate")
"""Metrics of the metrics table the callback logs (mean and pass at every k)."""


def metrics_to_logs(metrics: pd.DataFrame) -> dict[str, float]:
    """`budget/<task>/<B>/mean@k`, `pass@k`, `length_mean`, `truncation_rate` from a metrics table (cutoff mode)."""
    logs = {}
    for row in metrics[(metrics["mode"] == "cutoff") & metrics["metric"].isin(LOGGED_METRICS)].itertuples(index=False):
        name = row.metric if pd.isna(row.k) else f"{row.metric}@{int(row.k)}"
        logs[f"budget/{row.task}/{int(row.budget)}/{name}"] = float(row.value)
    return logs


# --- engines ----------------------------------------------------------------------------------


def _refuse_sharded_policy_generation(trainer) -> None:
    uses_vllm = bool(getattr(trainer, "use_vllm", False))
    if uses_vllm:
        return
    sharded = bool(getattr(trainer, "is_fsdp_enabled", False))
    if getattr(trainer, "is_deepspeed_enabled", False):
        plugin = getattr(getattr(trainer.accelerator, "state", None), "deepspeed_plugin", None)
        sharded = sharded or getattr(plugin, "zero_stage", 0) == 3
    if sharded:
        raise UserError(
            "BudgetEvalCallback generates with the policy on the main process, which sharded weights (FSDP, "
            "ZeRO-3) do not allow: train with use_vllm=True so it uses the trainer's vLLM engine."
        )


def _generate_colocated(generation, requests, sampling):
    """Generate with TRL's colocated `vllm.LLM`, waking and re-sleeping it as TRL's own rollout does."""
    from budgeteval.generation.backends.vllm_backend import generate_with

    llm = generation.llm
    sleeping = bool(getattr(generation, "enable_sleep_mode", False))
    if sleeping:
        if getattr(generation, "_llm_weights_sleeping", False):
            generation.sync_weights()
        llm.wake_up(tags=["kv_cache"])
    try:
        return generate_with(llm, requests, sampling)
    finally:
        if sleeping:
            llm.sleep(level=2)
            generation._llm_weights_sleeping = True


def _server_backend(generation, tokenizer):
    """budgeteval's OpenAI-compatible backend on the `trl vllm-serve` server TRL talks to."""
    from budgeteval.generation.backends.openai_backend import OpenAIBackend
    from budgeteval.generation.config import EngineOptions

    client = generation.vllm_client
    return OpenAIBackend(client.model, getattr(tokenizer, "name_or_path", ""),
                         EngineOptions(base_url=f"{client.base_url.rstrip('/')}/v1"))


def _generate_with_policy(model, tokenizer, requests, sampling):
    """One seeded `generate` per sample with the policy, leaving its mode and torch's RNG as they were."""
    import torch

    from budgeteval.generation.backends.hf_backend import HFBackend

    devices = [model.device] if model.device.type == "cuda" else []
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            return HFBackend.from_model(model, tokenizer).generate(requests, sampling)
    finally:
        model.train(was_training)


# --- reward functions ---------------------------------------------------------------------------


def reward_function(name: str, *, scorer: str = "math", reference_column: str = "reference",
                    think_end: str | None = None, workers: int = 2, target_length: Any = None,
                    alpha: float | None = None, lam: float = 2.0, reference_length: Any = "reference_length",
                    reference_accuracy: Any = "reference_accuracy") -> Callable:
    """A TRL reward function (`GRPOTrainer(reward_funcs=[...])`) for reward or strategy `name`.

    `name`: a key of `budgeteval.train.rewards.REWARDS` (`correctness`, `truncation`, `kimi`,
    `laser`, `laser_de`, `o1_pruner`) or a negative-rollout strategy (`vanilla`, `-I`, `-L&C`,
    `-L&C-S&I`, `-L&C-L&I`). Correctness: scorer `scorer` on the completion text against the
    dataset column `reference_column`, answer after `think_end` when given. `target_length`,
    `reference_length`, `reference_accuracy`: a number, or the name of a dataset column holding
    one value per row (LASER-D's per-problem targets, O1-Pruner's reference statistics).
    Masked rollouts get None.
    """
    from budgeteval.train.rewards import NEGATIVE_STRATEGIES, REWARDS, RewardParams, batch_rewards

    if name not in REWARDS and name not in NEGATIVE_STRATEGIES:
        raise UserError(f"Unknown reward {name!r}: use one of {', '.join([*REWARDS, *NEGATIVE_STRATEGIES])}.")

    def reward(prompts, completions, completion_ids, **columns):
        from budgeteval.train.judge import judge_texts

        if reference_column not in columns:
            raise UserError(
                f"The training dataset has no column {reference_column!r} with the references; "
                f"name it with reward_function(..., reference_column=...)."
            )
        verdicts = judge_texts([_completion_text(c) for c in completions], columns[reference_column], scorer,
                               think_end=think_end, workers=workers)
        params = RewardParams(
            target_length=_column_or_value(target_length, columns), alpha=alpha, lam=lam,
            reference_length=_column_or_value(reference_length, columns) if name == "o1_pruner" else None,
            reference_accuracy=_column_or_value(reference_accuracy, columns) if name == "o1_pruner" else None,
        )
        groups = [json.dumps(prompt, sort_keys=True, default=str) for prompt in prompts]
        results = batch_rewards(name, [v.correct for v in verdicts], [len(ids) for ids in completion_ids], groups,
                                params)
        return [result.reward if result.kept else None for result in results]

    reward.__name__ = f"budgeteval_{name}"
    return reward


def _completion_text(completion) -> str:
    """The text of a TRL completion: a string, or (conversational) the contents of its messages."""
    if isinstance(completion, str):
        return completion
    return "".join(str(message.get("content") or "") for message in completion)


def _column_or_value(value, columns: dict):
    if isinstance(value, str):
        if value not in columns:
            raise UserError(f"The training dataset has no column {value!r}; add it or pass a number instead.")
        return list(columns[value])
    return value
