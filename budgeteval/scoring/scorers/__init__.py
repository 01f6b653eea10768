"""The scorers: one module per scorer a task may name (`budgeteval.tasks.registry.SCORERS`).

Heavy imports (math-verify, the sandbox) happen only inside the module a task actually uses.
"""
