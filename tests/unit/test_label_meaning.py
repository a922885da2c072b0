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


def test_two_issues_never_share_a_title_the_one_it_fits_better_keeps_it():
    """Both issues' most central statement is one complaint said in both (hand-written); the
    issue where it scores higher keeps it as its title, the other takes its next statement."""
    from triage.label import titles

    texts = [
        "Reminder emails arrive two days late",
        "Reminder emails arrive two days late",
        "Invoice totals round to the wrong cent",
    ]

    def context(rows: list[int], closeness: list[float]) -> titles.TitleContext:
        return titles.TitleContext(
            keywords=[],
            central=np.array(rows),
            closeness=np.array(closeness),
            margin=np.zeros(len(rows)),
        )

    contexts = {1: context([0], [0.9]), 2: context([1, 2], [0.8, 0.8])}
    found = titles.choose_titles(contexts, texts, max_words=12, candidates=5)
    assert found[1] == "Reminder emails arrive two days late"
    assert found[2] == "Invoice totals round to the wrong cent"
    alone = titles.choose_titles({2: contexts[2]}, texts, max_words=12, candidates=5)
    assert alone[2] == "Reminder emails arrive two days late"  # it was its best


def test_a_clause_that_means_another_issue_is_never_its_title_while_one_means_its_own():
    from triage.label import titles

    texts = ["Exports of the weekly report fail on Mondays", "Search results load very slowly"]
    context = titles.TitleContext(
        keywords=[], central=np.array([0, 1]), closeness=np.array([0.9, 0.5]),
        margin=np.array([0.3, -0.1]), position=0,
    )  # fmt: skip
    centroids = np.eye(2, 3, dtype=np.float32)
    # Each statement's own meaning leans by 0.01: the central one to issue 1, the other home.
    vectors = np.array([[0.70, 0.71, 0.0], [0.5, 0.49, 0.714]], dtype=np.float32)
    meaning = Meaning(lambda batch: np.zeros((len(batch), 3), np.float32), vectors, centroids)
    plain = titles.choose_titles({7: context}, texts, max_words=12, candidates=5)
    assert plain[7] == "Exports of the weekly report fail on Mondays"
    found = titles.choose_titles({7: context}, texts, max_words=12, candidates=5, meaning=meaning)
    assert found[7] == "Search results load very slowly"
