"""budgeteval: budget-sweep evaluation for reasoning LLMs (generate once, replay every budget, score).

The Python API, the same one the commands are thin layers over (docs/api.md):

    import budgeteval
    run = budgeteval.evaluate("Qwen/Qwen3-1.7B", "gsm8k", out="runs/qwen", budgets="2k:16k:x2", n=4)
    print(run.report(fmt="markdown"))                       # the `report` table; fmt="frame" for pandas
    rescored = budgeteval.score(run, answer_policy="lenient")
    base = budgeteval.load_run("runs/base")                 # a Run: .scores, .metrics, .problems, ...
    ours = budgeteval.load_run("runs/ours", label="ours")
    print(budgeteval.compare_runs([base, ours], k=8).format("markdown"))
    budgeteval.save_figures([base, ours], "figs/", "pdf,png")
    budgeteval.push([base, ours], "my-org/budgets")         # a Hugging Face dataset with a card
    budgeteval.log(ours, to="wandb", project="budgets")     # or to="trackio"

Importing the package imports nothing heavy: each name below loads its module on first use.
"""

from importlib import import_module

_EXPORTS = {
    "evaluate": "budgeteval.api:evaluate",
    "score": "budgeteval.api:score",
    "import_outputs": "budgeteval.api:import_outputs",
    "analyze": "budgeteval.api:analyze",
    "plot": "budgeteval.api:plot",
    "push": "budgeteval.api:push",
    "log": "budgeteval.api:log",
    "Push": "budgeteval.api:Push",
    "load_run": "budgeteval.api:load_run",
    "load_runs": "budgeteval.api:load_runs",
    "Run": "budgeteval.api:Run",
    "compare_runs": "budgeteval.report.compare:compare_runs",
    "Comparison": "budgeteval.report.compare:Comparison",
    "compare_modes": "budgeteval.api:compare_modes",
    "budget_figures": "budgeteval.plots.budget:budget_figures",
    "save_figures": "budgeteval.plots.budget:save_figures",
    "PlotOptions": "budgeteval.plots.budget:PlotOptions",
    "UserError": "budgeteval.errors:UserError",
}
"""Public names -> "module:attribute", imported when first accessed."""

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'budgeteval' has no attribute {name!r}")
    module, _, attribute = _EXPORTS[name].partition(":")
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
