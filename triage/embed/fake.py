"""A deterministic embedder for tests: fast, torch-free, and texts sharing words are similar."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import numpy as np

from triage.embed.base import Embedder

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
