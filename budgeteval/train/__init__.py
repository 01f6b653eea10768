"""Budget curves during RL training, and the length-aware rewards researchers train with.

A thin adapter: the trainer generates, budgeteval replays, scores and logs with the same replay,
scorers and metrics as `budgeteval run`.

- `budgeteval.train.trl`: `BudgetEvalCallback` for transformers/TRL trainers (it uses the
  trainer's vLLM engine when it has one), and TRL `reward_funcs` built from the rewards below.
- `budgeteval.train.verl`: `compute_score` / `compute_score_batch` / `reward_batch` for verl's
  `custom_reward_function` (verl itself is never imported).
- `budgeteval.train.watch`: `budgeteval watch DIR` follows verl's `validation_data_dir` dumps.
- `budgeteval.train.rewards`: the reward functions and negative-rollout strategies, as pure
  functions over correctness and lengths.
- `budgeteval.report.steps`: the per-step metrics table both adapters append to
  (`budgeteval.plots.steps` draws it: `budgeteval plot DIR --by step`).
- `budgeteval.train.judge`: correctness of raw completion texts with budgeteval's scorers.
"""
