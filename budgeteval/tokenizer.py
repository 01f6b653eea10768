"""Loading a model's tokenizer: the one place every stage (run, import, score, backends, trainers) gets it.

Prompts are rendered and responses decoded with the model's own tokenizer; a run directory keeps
a copy in `tokenizer/` (`budgeteval.run_dir.tokenizer_dir`), so scoring never needs the hub.
Scoring only decodes: `load_decoder` reads that copy's `tokenizer.json` with the `tokenizers`
library (milliseconds, where importing transformers takes seconds) whenever that gives
transformers' text, and falls back to `load_tokenizer` otherwise.
"""

import json
from pathlib import Path
from typing import Optional, Sequence

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


class FastDecoder:
    """Token ids to text with the `tokenizers` library alone: the `decode`/`batch_decode` of a
    transformers fast tokenizer whose config asks for no clean-up of tokenization spaces."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        """A `tokenizers.Tokenizer`."""

    def decode(self, token_ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=skip_special_tokens)

    def batch_decode(self, id_lists: Sequence[Sequence[int]], skip_special_tokens: bool = False) -> list[str]:
        return self.tokenizer.decode_batch([list(ids) for ids in id_lists], skip_special_tokens=skip_special_tokens)


def load_decoder(folder: str):
    """What decodes a saved tokenizer folder's ids: a `FastDecoder` when its tokenizer.json decodes
    exactly as transformers would (no `clean_up_tokenization_spaces`), else the transformers tokenizer."""
    path = Path(folder)
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if (path / "tokenizer.json").is_file() and config is not None and not config.get("clean_up_tokenization_spaces"):
        try:
            from tokenizers import Tokenizer

            return FastDecoder(Tokenizer.from_file(str(path / "tokenizer.json")))
        except Exception:  # noqa: BLE001  (a file this tokenizers version cannot read: transformers can)
            pass
    return load_tokenizer(str(path))
