"""verl adapter: reward functions for verl's `custom_reward_function`, backed by budgeteval's scorers.

verl loads a function from a file: set `custom_reward_function.path` to this file (print it with
`python -c "import budgeteval.train.verl as m; print(m.__file__)"`) and `.name` to one of:

- `compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float`:
  the signature verl's per-response reward managers (`naive`, `dapo`, `prime`) call. Correctness
  is 1.0 or 0.0. Each call is one scorer call; the math scorer runs math-verify in a fresh worker
  process per call (about a second, never a signal in the caller), so for math prefer:
- `compute_score_batch(data_sources, solution_strs, ground_truths, extra_infos=None, **kwargs)`:
  for `reward_model.reward_manager=batch`; one scorer call per batch, each distinct answer
  verified once.
- `reward_batch(data_sources, solution_strs, ground_truths, extra_infos=None, *, reward, ...)`:
  the length-aware rewards and negative-rollout strategies of `budgeteval.train.rewards` for the
  batch manager. Returns `{"score", "acc"}` per response, plus `"kept"` (1.0/0.0) for a strategy:
  verl stores it in the reward extra info but does not mask by it; a trainer that honours the
  mask zeroes the response's `response_mask` (or advantage) where kept is 0. Lengths are the
  response's tokens under `tokenizer` (verl hands over decoded text, its end-of-sequence token
  stripped); groups (for `kimi`) are `extra_info[group_key]`, the row index verl's example
  preprocessing stores under `index`.

Options come from `custom_reward_function.reward_kwargs` (verl passes them as keyword arguments):
`scorer` (default: the budgeteval task named `data_source`, else `VERL_DATA_SOURCES`),
`think_end` (read the answer after it; a response without it is unfinished), `workers`. verl is
never imported; `budgeteval watch` follows verl's validation dumps for budget curves.
"""

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from budgeteval.errors import UserError

VERL_DATA_SOURCES = {
    "openai/gsm8k": "gsm8k",
    "lighteval/MATH": "math",
    "DigitalLearningGmbH/MATH-lighteval": "math",
    "HuggingFaceH4/MATH-500": "math",
    "math_dapo": "math",
}
"""verl's example data sources (`verl.utils.reward_score.default_compute_score`) -> budgeteval scorer."""


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: dict | None = None, *,
                  scorer: str | None = None, think_end: str | None = None, workers: int = 1,
                  **_verl_kwargs) -> float:
    """1.0 if `solution_str` answers `ground_truth` correctly under budgeteval's scorer, else 0.0."""
    return compute_score_batch([data_source], [solution_str], [ground_truth], [extra_info], scorer=scorer,
                               think_end=think_end, workers=workers)[0]


def compute_score_batch(data_sources: Sequence[str], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[dict | None] | None = None, *, scorer: str | None = None,
                        think_end: str | None = None, workers: int = 4, **_verl_kwargs) -> list[float]:
    """Correctness (1.0 / 0.0) of every response of a batch: one scorer call per scorer in the batch."""
    return [float(correct) for correct in _correctness(data_sources, solution_strs, ground_truths, scorer,
                                                        think_end, workers)]


def reward_batch(data_sources: Sequence[str], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                 extra_infos: Sequence[dict | None] | None = None, *, reward: str,
                 tokenizer: str | None = None, scorer: str | None = None, think_end: str | None = None,
                 workers: int = 4, group_key: str = "index", target_length: Any = None, alpha: float | None = None,
                 lam: float = 2.0, reference_length: Any = "reference_length",
                 reference_accuracy: Any = "reference_accuracy", **_verl_kwargs) -> list[dict]:
    """Reward `reward` (or a negative-rollout strategy) for every response of a batch, as verl result dicts.

    `target_length`, `reference_length`, `reference_accuracy`: a number, or the name of an
    `extra_info` key holding the response's value (LASER-D targets, O1-Pruner reference stats).
    """
    from budgeteval.train.rewards import NEGATIVE_STRATEGIES, RewardParams, batch_rewards

    if tokenizer is None:
        raise UserError("reward_batch counts response tokens: set custom_reward_function.reward_kwargs.tokenizer "
                        "to the policy's tokenizer (a hub id or local path).")
    infos = [info or {} for info in (extra_infos if extra_infos is not None else [None] * len(solution_strs))]
    correct = _correctness(data_sources, solution_strs, ground_truths, scorer, think_end, workers)
    encoded = _load_tokenizer(tokenizer)([str(text) for text in solution_strs], add_special_tokens=False)["input_ids"]
    groups = None
    if reward == "kimi":
        missing = [index for index, info in enumerate(infos) if group_key not in info]
        if missing:
            raise UserError(f"The Kimi length reward groups responses by extra_info[{group_key!r}], which response "
                            f"{missing[0]} lacks; set reward_kwargs.group_key to the key naming the prompt.")
        groups = [str(info[group_key]) for info in infos]
    params = RewardParams(
        target_length=_info_or_value(target_length, infos), alpha=alpha, lam=lam,
        reference_length=_info_or_value(reference_length, infos) if reward == "o1_pruner" else None,
        reference_accuracy=_info_or_value(reference_accuracy, infos) if reward == "o1_pruner" else None,
    )
    results = batch_rewards(reward, correct, [len(ids) for ids in encoded], groups, params)
    if reward in NEGATIVE_STRATEGIES:
        return [{"score": r.reward, "acc": float(c), "kept": float(r.kept)} for r, c in zip(results, correct)]
    return [{"score": r.reward, "acc": float(c)} for r, c in zip(results, correct)]


def scorer_for(data_source: str, scorer: str | None = None) -> str:
    """The budgeteval scorer for a verl data source (see the module docstring)."""
    if scorer:
        return scorer
    return _scorer_for_source(str(data_source))


@lru_cache(maxsize=256)
def _scorer_for_source(data_source: str) -> str:
    from budgeteval.tasks.loading import builtin_task_paths, load_task

    if data_source in builtin_task_paths():
        return load_task(data_source).scorer
    if data_source in VERL_DATA_SOURCES:
        return VERL_DATA_SOURCES[data_source]
    raise UserError(
        f"No budgeteval scorer is known for data source {data_source!r}: set "
        f"custom_reward_function.reward_kwargs.scorer (math, gsm8k, ...) or use a budgeteval task name."
    )


def _correctness(data_sources, solution_strs, ground_truths, scorer, think_end, workers) -> list[bool]:
    from budgeteval.train.judge import ground_truth_text, judge_texts

    if not len(data_sources) == len(solution_strs) == len(ground_truths):
        raise UserError(f"The batch has {len(data_sources)} data sources, {len(solution_strs)} responses and "
                        f"{len(ground_truths)} ground truths.")
    scorers = [scorer_for(source, scorer) for source in data_sources]
    correct = [False] * len(solution_strs)
    for name in sorted(set(scorers)):
        indices = [index for index, item_scorer in enumerate(scorers) if item_scorer == name]
        verdicts = judge_texts([solution_strs[i] for i in indices], [ground_truth_text(ground_truths[i]) for i in indices],
                               name, think_end=think_end, workers=workers)
        for index, verdict in zip(indices, verdicts):
            correct[index] = bool(verdict.correct)
    return correct


@lru_cache(maxsize=4)
def _load_tokenizer(name: str):
    from budgeteval.generation.tokenizer import load_tokenizer

    return load_tokenizer(name)


def _info_or_value(value, infos: list[dict]):
    if isinstance(value, str):
        missing = [index for index, info in enumerate(infos) if value not in info]
        if missing:
            raise UserError(f"extra_info of response {missing[0]} has no {value!r}; add it in preprocessing or pass a number.")
        return [info[value] for info in infos]
    return value
