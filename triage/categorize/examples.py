"""Texts with a known category and their vectors: the labelled set and people's corrections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from triage.errors import InvalidInputError, ModelNotFoundError

# The categories every signal scores and every label must be one of.
CATEGORIES = ("ui", "data", "model", "expectation")
# The labelled examples the classifier was trained on, embedded, for the nearest-example signal.
EXAMPLES_FILE = "examples.npz"


@dataclass
class LabelledExamples:
    """Texts with a known category and their vectors (the labelled set and human corrections)."""

    texts: list[str]
    vectors: np.ndarray
    labels: list[str]

    def __post_init__(self) -> None:
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if not (len(self.texts) == len(self.labels) == self.vectors.shape[0]):
            raise InvalidInputError(
                f"{len(self.texts)} texts, {len(self.labels)} labels and "
                f"{self.vectors.shape[0]} vectors: they must be the same length."
            )
        unknown = sorted(set(self.labels) - set(CATEGORIES))
        if unknown:
            raise InvalidInputError(f"Unknown categories {unknown}; use one of {CATEGORIES}.")

    def __len__(self) -> int:
        return len(self.labels)

    def __add__(self, other: LabelledExamples) -> LabelledExamples:
        return LabelledExamples(
            self.texts + other.texts,
            np.concatenate([self.vectors, other.vectors]),
            self.labels + other.labels,
        )

    def save(self, path: str | Path) -> Path:
        """One ``.npz`` of arrays (texts and labels as unicode arrays), no pickle."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            path,
            texts=np.array(self.texts, dtype=str),
            vectors=self.vectors,
            labels=np.array(self.labels, dtype=str),
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> LabelledExamples:
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return cls(
                    [str(t) for t in arrays["texts"]],
                    arrays["vectors"],
                    [str(label) for label in arrays["labels"]],
                )
        except FileNotFoundError as e:
            raise ModelNotFoundError(
                f"No labelled examples at {path}. Write them with `python -m bench.categorize`."
            ) from e
