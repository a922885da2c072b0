"""Titles judged on their own meaning: ``Meaning`` and ``label_issues(embed=...)``."""

from __future__ import annotations

import numpy as np

from tests.unit.test_label import EXPORT, NUMBERS, lemmas_of, unit_vectors
from triage.label import label_issues
from triage.label.meaning import Meaning


def test_margin_is_own_cosine_minus_the_nearest_other_and_statements_keep_their_vector():
    asked: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.append(list(texts))
        return np.array([[0.6, 0.8, 0.0]] * len(texts), dtype=np.float32)

    centroids = np.eye(3, dtype=np.float32)[:2]
    vectors = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)
    meaning = Meaning(embed, vectors, centroids)
    margins = meaning.margins(["a statement", "a clause"], [0, None], [0, 0])
    assert np.allclose(margins, [1.0, 0.6 - 0.8])
    assert asked == [["a clause"]]
    alone = Meaning(embed, vectors, centroids[:1]).margins(["a clause"], [None], [0])
    assert np.allclose(alone, [0.6])


def test_a_title_whose_own_meaning_points_at_another_issue_loses_to_one_that_points_home():
    texts = [text for text, _ in EXPORT] + [text for text, _ in NUMBERS]
    labels = [0] * len(EXPORT) + [1] * len(NUMBERS)
    vectors = unit_vectors(labels)
    plain = label_issues(labels, texts, lemmas_of(texts), vectors)[0].title
    centroid = {k: vectors[np.array(labels) == k].mean(axis=0) for k in (0, 1)}
    asked: list[str] = []

    def embed(batch: list[str]) -> np.ndarray:
        # The plain winner reads like the other issue; every other clause like its own.
        asked.extend(batch)
        rows = [centroid[1 if text.lower() == plain.lower() else 0] for text in batch]
        rows = np.array(rows, dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    found = label_issues(labels, texts, lemmas_of(texts), vectors, embed=embed)
    assert plain.lower() in {text.lower() for text in asked}
    assert found[0].title.lower() != plain.lower()
    assert found[0].title.lower() in {text.lower() for text in asked}
    assert not set(asked) & set(texts)  # a whole statement is never embedded again
