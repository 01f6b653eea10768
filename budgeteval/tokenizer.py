"""Loading a model's tokenizer: the one place every stage (run, import, score, backends, trainers) gets it.

Prompts are rendered and responses decoded with the model's own tokenizer; a run directory keeps
a copy in `tokenizer/` (`budgeteval.run_dir.tokenizer_dir`), so scoring never needs the hub.
"""

from typing import Optional

from budgeteval.errors import UserError


def load_tokenizer(name_or_path: str, revision: Optional[str] = None):
    """Load a Hugging Face tokenizer, with one clear sentence when it cannot be found."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, revision=revision)
    except (OSError, ValueError) as error:
        raise UserError(
            f"Cannot load the tokenizer {name_or_path!r} ({str(error).splitlines()[0]}); "
            f"pass --tokenizer with a local path or a hub id."
        ) from None
