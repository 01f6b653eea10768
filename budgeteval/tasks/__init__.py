"""Tasks: task YAML files and their records, suites, row builders, prompts and lm-eval tasks.

Takes a task name, a YAML path or `lm-eval:NAME` (and a local data file); gives `Task` and
`Problem` records (`budgeteval.tasks.records`) and the prompts a backend generates from.
"""
