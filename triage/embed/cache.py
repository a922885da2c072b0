"""The vector cache: content hashes as keys, portable bytes as values, and the lookup that embeds
only what is not stored yet for this model (simonw/llm's ``embed_multi`` skips unchanged text the
same way). The queries themselves live in ``triage.store``; they are passed in."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from triage.embed.base import Embedder

# ``store.cached_vectors`` and ``store.add_vectors`` with the session bound (functools.partial).
LookupVectors = Callable[..., dict[str, bytes]]
SaveVectors = Callable[..., None]


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


@dataclass(frozen=True)
class CachedVectors:
    """One row per text, and what it took: texts embedded now (each distinct text once), texts
    served from the cache, and the seconds spent embedding."""

    vectors: np.ndarray
    embedded: int
    cache_hits: int
    seconds: float


def embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    *,
    lookup: LookupVectors,
    save: SaveVectors,
    batch_size: int = 64,
) -> CachedVectors:
    """Vectors for ``texts``, embedding only what ``lookup`` does not hold for this model and
    handing the new vectors to ``save``.

    ``lookup(text_hashes=..., model_id=...)`` returns stored bytes by hash;
    ``save(vectors=..., model_id=..., dim=...)`` stores new ones.
    """
    hashes = [text_hash(t) for t in texts]
    model_id = embedder.model_id
    cached = lookup(text_hashes=hashes, model_id=model_id)
    missing = list(dict.fromkeys(h for h in hashes if h not in cached))
    seconds = 0.0
    if missing:
        text_of = dict(zip(hashes, texts, strict=True))
        start = time.perf_counter()
        fresh = embedder.embed([text_of[h] for h in missing], batch_size=batch_size)
        seconds = time.perf_counter() - start
        new = {h: vector_to_bytes(v) for h, v in zip(missing, fresh, strict=True)}
        save(vectors=new, model_id=model_id, dim=embedder.dim)
        cached.update(new)
    if hashes:
        vectors = np.stack([vector_from_bytes(cached[h]) for h in hashes])
    else:
        vectors = np.empty((0, embedder.dim), dtype=np.float32)
    return CachedVectors(
        vectors, embedded=len(missing), cache_hits=len(hashes) - len(missing), seconds=seconds
    )
