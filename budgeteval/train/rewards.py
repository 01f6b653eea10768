"""Length-aware RL rewards and negative-rollout strategies, as pure functions of correctness and length.

What a trainer needs to reproduce the rewards that CoT-compression papers train with. Every
function here takes a rollout's correctness (`correct`, judged by budgeteval's scorers in the
wrappers) and its length in tokens (`length`, the response token ids, end-of-sequence included, as
budgeteval counts them); the group-relative ones take a whole group, the rollouts sampled for one
prompt. Nothing here scores, tokenizes or imports a trainer: `budgeteval.train.trl` and
`budgeteval.train.verl` wrap these functions for TRL's `reward_funcs` and verl's
`custom_reward_function`.

Notation: c = 1 if the rollout is correct else 0; L its length; L_T a target length.

- `truncation_reward`: R_T = c * 1[L <= L_T] (a rollout longer than L_T counts as cut at L_T).
- `kimi_length_rewards` (Kimi Team 2025, "Kimi k1.5", arXiv 2501.12599, length penalty): over the
  group, lambda = 0.5 - L~ with L~ = (L - min_len) / (max_len - min_len); the paper's length reward
  is lambda for a correct rollout and min(0, lambda) for an incorrect one, added to the correctness
  reward with a weight alpha. So R = 1 + alpha * (0.5 - L~) when correct and
  min(0, alpha * (0.5 - L~)) when incorrect (alpha >= 0). When every rollout of the group has the
  same length the paper's ratio is 0/0; here L~ = 0.5, so lambda = 0 (no length signal; open-r1's
  `len_reward` does the same).
- `laser_reward` (Liu et al. 2025, "Learn to Reason Efficiently with Adaptive Length-based Reward
  Shaping", arXiv 2505.15612): R = C(y) + lambda(y) * S(y) with C = c, lambda = c and the step
  S = alpha * 1[L <= L_T], i.e. R = c * (1 + alpha * 1[L <= L_T]). LASER-D is this step reward with a
  dynamic, difficulty-aware target: give each rollout its problem's current target (the wrappers
  accept a per-problem target column); how the targets adapt is the training loop's business.
- `laser_de_reward`: LASER-DE, the exploration variant: LASER plus alpha for an incorrect rollout
  longer than the target, R = c * (1 + alpha * 1[L <= L_T]) + (1 - c) * alpha * 1[L > L_T].
- `length_harmonizing_reward` (Luo et al. 2025, "O1-Pruner", arXiv 2501.12570):
  R = L_ref / L - 1 + lambda * (A - A_ref), with A = c and L_ref, A_ref the mean length and accuracy
  of the reference model's samples for the problem (`reference_stats` reads them from a run).

Negative-rollout strategies (`negative_rollout`): each rollout is short (L <= L_T) or long (L > L_T)
and correct (C) or incorrect (I). A kept rollout gets the truncation reward R_T (1 for short and
correct, 0 otherwise); a masked rollout is left out of the policy loss and of the group baseline
(reward 0.0, kept False). The strategy names say which categories are masked ("-X" removes X):

| strategy | short & correct | long & correct | short & incorrect | long & incorrect |
| --- | --- | --- | --- | --- |
| `vanilla` | 1 | 0 | 0 | 0 |
| `-I` | 1 | 0 | masked | masked |
| `-L&C` | 1 | masked | 0 | 0 |
| `-L&C-S&I` | 1 | masked | masked | 0 |
| `-L&C-L&I` | 1 | masked | 0 | masked |

Who honours the mask: TRL's `GRPOTrainer` (>= 1.0) treats a completion for which every reward
function returned None as unscorable: it is excluded from its group's mean and std and its
advantage is set to 0, so it moves nothing (its tokens still count in the loss normaliser). The
TRL wrapper returns None for masked rollouts, so it must be the only reward function (or all the
others must return None for them too). verl has no per-rollout mask in its reward path: the verl
wrapper returns `{"score": reward, "kept": 0 or 1}`; verl stores "kept" in the batch's reward extra
info, and a trainer must zero the rollout's `response_mask` (or advantages) itself to honour it.

Not here: KL or entropy terms, format rewards, or any adaptive schedule of targets or weights.
"""

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from budgeteval.errors import UserError


def truncation_reward(correct: bool, length: int, target_length: int) -> float:
    """R_T = 1[correct] * 1[length <= target_length]."""
    _check_length(length)
    return float(bool(correct) and length <= target_length)


def normalised_lengths(lengths: Sequence[int]) -> list[float]:
    """L~ = (L - min) / (max - min) within one group; 0.5 for every rollout when all lengths are equal."""
    if not lengths:
        return []
    for length in lengths:
        _check_length(length)
    shortest, longest = min(lengths), max(lengths)
    if longest == shortest:
        return [0.5] * len(lengths)
    return [(length - shortest) / (longest - shortest) for length in lengths]


def kimi_length_rewards(correct: Sequence[bool], lengths: Sequence[int], alpha: float = 1.0) -> list[float]:
    """Kimi k1.5's correctness + alpha * length reward for one group (see the module docstring)."""
    _check_group(correct, lengths)
    if alpha < 0:
        raise UserError(f"The Kimi length reward's weight alpha must be non-negative, got {alpha}.")
    rewards = []
    for is_correct, normalised in zip(correct, normalised_lengths(lengths)):
        signal = alpha * (0.5 - normalised)
        rewards.append(1.0 + signal if is_correct else min(0.0, signal))
    return rewards


def laser_reward(correct: bool, length: int, target_length: int, alpha: float = 0.5) -> float:
    """LASER's step reward: 1[correct] * (1 + alpha * 1[length <= target_length])."""
    _check_length(length)
    if not correct:
        return 0.0
    return 1.0 + (alpha if length <= target_length else 0.0)


def laser_de_reward(correct: bool, length: int, target_length: int, alpha: float = 0.5) -> float:
    """LASER-DE: LASER plus alpha for an incorrect rollout longer than the target (exploration)."""
    _check_length(length)
    if correct:
        return laser_reward(True, length, target_length, alpha)
    return alpha if length > target_length else 0.0


def length_harmonizing_reward(correct: bool, length: int, reference_length: float, reference_accuracy: float,
                              lam: float = 2.0) -> float:
    """O1-Pruner: L_ref / L - 1 + lam * (1[correct] - A_ref)."""
    _check_length(length)
    if length == 0:
        raise UserError("The length-harmonizing reward divides by the response length: an empty response has none.")
    if not reference_length > 0 or not 0 <= reference_accuracy <= 1:
        raise UserError(
            f"O1-Pruner needs the reference model's mean length (> 0) and accuracy (0..1) for the problem, "
            f"got {reference_length} and {reference_accuracy}."
        )
    return reference_length / length - 1.0 + lam * (float(bool(correct)) - reference_accuracy)


NEGATIVE_STRATEGIES: dict[str, frozenset[str]] = {
    "vanilla": frozenset(),
    "-I": frozenset({"short_incorrect", "long_incorrect"}),
    "-L&C": frozenset({"long_correct"}),
    "-L&C-S&I": frozenset({"long_correct", "short_incorrect"}),
    "-L&C-L&I": frozenset({"long_correct", "long_incorrect"}),
}
"""Strategy name -> the rollout categories it masks (see the table in the module docstring)."""


@dataclass(frozen=True)
class MaskedReward:
    """A rollout's reward under a negative-rollout strategy."""

    reward: float
    """The truncation reward R_T for a kept rollout; 0.0 for a masked one (it enters no loss)."""
    kept: bool
    """False: leave the rollout out of the policy loss and of its group's baseline."""


def rollout_category(correct: bool, length: int, target_length: int) -> str:
    """`short_correct`, `long_correct`, `short_incorrect` or `long_incorrect` (short: length <= target)."""
    _check_length(length)
    return f"{'short' if length <= target_length else 'long'}_{'correct' if correct else 'incorrect'}"


def negative_rollout(strategy: str, correct: bool, length: int, target_length: int) -> MaskedReward:
    """The reward and mask of one rollout under `strategy` (a key of `NEGATIVE_STRATEGIES`)."""
    if strategy not in NEGATIVE_STRATEGIES:
        raise UserError(f"Unknown negative-rollout strategy {strategy!r}: use one of {', '.join(NEGATIVE_STRATEGIES)}.")
    if rollout_category(correct, length, target_length) in NEGATIVE_STRATEGIES[strategy]:
        return MaskedReward(0.0, False)
    return MaskedReward(truncation_reward(correct, length, target_length), True)


PerRollout = float | Sequence[float] | None
"""A parameter given once for the batch, or once per rollout (e.g. LASER-D's per-problem targets)."""


@dataclass(frozen=True)
class RewardParams:
    """The parameters of a batch's reward; each reward reads the ones it needs."""

    target_length: PerRollout = None
    """L_T for truncation, LASER, LASER-DE and the negative-rollout strategies."""
    alpha: float | None = None
    """Length-term weight: default 1.0 for `kimi`, 0.5 for `laser` and `laser_de`."""
    lam: float = 2.0
    """O1-Pruner's accuracy weight lambda."""
    reference_length: PerRollout = None
    """O1-Pruner: the reference model's mean length on the rollout's problem."""
    reference_accuracy: PerRollout = None
    """O1-Pruner: the reference model's accuracy on the rollout's problem."""


def batch_rewards(name: str, correct: Sequence[bool], lengths: Sequence[int], groups: Sequence | None = None,
                  params: RewardParams = RewardParams()) -> list[MaskedReward]:
    """Reward (and mask) of every rollout of a batch under reward `name` or a negative-rollout strategy.

    `name` is a key of `REWARDS` or of `NEGATIVE_STRATEGIES`. `groups` holds one key per rollout;
    rollouts with equal keys form a group (the `kimi` reward needs it). Only the strategies mask
    rollouts; the rewards keep them all.
    """
    if len(lengths) != len(correct):
        raise UserError(f"The batch has {len(correct)} correctness values but {len(lengths)} lengths.")
    if name in NEGATIVE_STRATEGIES:
        targets = _per_rollout(params.target_length, len(correct), "target_length", name)
        return [negative_rollout(name, c, length, target) for c, length, target in zip(correct, lengths, targets)]
    if name not in REWARDS:
        raise UserError(
            f"Unknown reward {name!r}: use one of {', '.join(REWARDS)} or a negative-rollout strategy "
            f"({', '.join(NEGATIVE_STRATEGIES)})."
        )
    return [MaskedReward(reward, True) for reward in REWARDS[name](list(correct), list(lengths), groups, params)]


def _correctness_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    return [float(bool(c)) for c in correct]


def _truncation_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    targets = _per_rollout(params.target_length, len(correct), "target_length", "truncation")
    return [truncation_reward(c, length, target) for c, length, target in zip(correct, lengths, targets)]


def _kimi_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    if groups is None or len(groups) != len(correct):
        raise UserError("The Kimi length reward is relative to the group: give one group key per rollout.")
    members: dict = {}
    for index, key in enumerate(groups):
        members.setdefault(key, []).append(index)
    rewards = [0.0] * len(correct)
    alpha = 1.0 if params.alpha is None else params.alpha
    for indices in members.values():
        for index, reward in zip(indices, kimi_length_rewards([correct[i] for i in indices],
                                                              [lengths[i] for i in indices], alpha)):
            rewards[index] = reward
    return rewards


def _laser_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    targets = _per_rollout(params.target_length, len(correct), "target_length", "laser")
    alpha = 0.5 if params.alpha is None else params.alpha
    return [laser_reward(c, length, target, alpha) for c, length, target in zip(correct, lengths, targets)]


def _laser_de_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    targets = _per_rollout(params.target_length, len(correct), "target_length", "laser_de")
    alpha = 0.5 if params.alpha is None else params.alpha
    return [laser_de_reward(c, length, target, alpha) for c, length, target in zip(correct, lengths, targets)]


def _o1_pruner_batch(correct, lengths, groups, params: RewardParams) -> list[float]:
    ref_lengths = _per_rollout(params.reference_length, len(correct), "reference_length", "o1_pruner")
    ref_accuracies = _per_rollout(params.reference_accuracy, len(correct), "reference_accuracy", "o1_pruner")
    return [length_harmonizing_reward(c, length, ref_length, ref_accuracy, params.lam)
            for c, length, ref_length, ref_accuracy in zip(correct, lengths, ref_lengths, ref_accuracies)]


REWARDS = {
    "correctness": _correctness_batch,
    "truncation": _truncation_batch,
    "kimi": _kimi_batch,
    "laser": _laser_batch,
    "laser_de": _laser_de_batch,
    "o1_pruner": _o1_pruner_batch,
}
"""Reward name -> its batch function `(correct, lengths, groups, params) -> rewards`."""


def _per_rollout(value: PerRollout, count: int, parameter: str, reward: str) -> list:
    if value is None:
        raise UserError(f"Reward {reward!r} needs {parameter}: give one value, or one per rollout.")
    if isinstance(value, (str, bytes)):
        raise UserError(f"{parameter} must be a number or one number per rollout, got {value!r}.")
    if hasattr(value, "__len__"):
        values = list(value)
        if len(values) != count:
            raise UserError(f"{parameter} has {len(values)} values for {count} rollouts.")
        return values
    return [value] * count


def reference_stats(scores: pd.DataFrame, budget: int | None = None, mode: str = "cutoff") -> pd.DataFrame:
    """Per problem, the reference model's mean length and accuracy, for the length-harmonizing reward.

    `scores` is a run's scores table (`budgeteval.scoring.evaluate.read_scores(run)` of the reference model);
    `budget` picks the budget (default: the largest scored). Returns `task, problem_id,
    reference_length, reference_accuracy`, one row per problem.
    """
    cell = scores[scores["mode"] == mode]
    if cell.empty:
        raise UserError(f"The scores table has no {mode} rows to take the reference length and accuracy from.")
    budget = int(cell["budget"].max()) if budget is None else int(budget)
    cell = cell[cell["budget"] == budget]
    if cell.empty:
        raise UserError(f"The scores table has no rows at budget {budget}: pick one of its scored budgets.")
    grouped = cell.groupby(["task", "problem_id"], sort=True)
    return pd.DataFrame({
        "reference_length": grouped["num_tokens"].mean().astype(float),
        "reference_accuracy": grouped["correct"].mean().astype(float),
    }).reset_index()


def _check_length(length: int) -> None:
    if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 0:
        raise UserError(f"A response length must be a non-negative number of tokens, got {length!r}.")


def _check_group(correct: Sequence[bool], lengths: Sequence[int]) -> None:
    if len(correct) != len(lengths):
        raise UserError(f"A group has {len(correct)} correctness values but {len(lengths)} lengths.")
    if not lengths:
        raise UserError("A group-relative reward needs at least one rollout in the group.")

