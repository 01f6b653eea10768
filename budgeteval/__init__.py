"""budgeteval: budget-sweep evaluation for reasoning LLMs (generate once, replay every budget, score).

The Python API for finished runs, the same one the `compare` and `plot` commands use:

    import budgeteval
    base = budgeteval.load_run("runs/base")                 # a Run: .scores, .metrics, .problems, ...
    ours = budgeteval.load_run("runs/ours", label="ours")
    print(budgeteval.compare_runs([base, ours], k=8).format("markdown"))
    budgeteval.save_figures([base, ours], "figs/", "pdf,png")

Importing the package imports nothing heavy: each name below loads its module on first use.
"""

from importlib import import_module

_EXPORTS = {
    "load_run": "budgeteval.api:load_run",
    "Run": "budgeteval.api:Run",
    "compare_runs": "budgeteval.report.compare:compare_runs",
    "Comparison": "budgeteval.report.compare:Comparison",
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
