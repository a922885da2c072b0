"""Keywords per issue by class-based TF-IDF, BERTopic's c-TF-IDF: all units of a cluster form one
document, so a word scores high when it is frequent in this cluster and rare in the others."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

UNASSIGNED = -1


def class_tfidf_keywords(
    labels: np.ndarray, lemmas: Sequence[list[str]], n_keywords: int
) -> dict[int, list[str]]:
    """Top unigrams and bigrams per class by c-TF-IDF, highest first."""
    scored = class_tfidf(labels, lemmas, n_keywords)
    return {cls: [term for term, _ in terms] for cls, terms in scored.items()}


def term_counts(lemmas: Sequence[list[str]]) -> tuple[sparse.csr_matrix, list[str]] | None:
    """Counts of each unigram and bigram (stop words left out) per unit, and the terms; None
    when no unit has a term at all. Each unit is its own document, so no bigram spans two."""
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english")
    try:
        counts = vectorizer.fit_transform(" ".join(unit) for unit in lemmas)
    except ValueError:  # no term at all: every unit was empty or only stop words
        return None
    return sparse.csr_matrix(counts), [str(t) for t in vectorizer.get_feature_names_out()]


def class_tfidf(
    labels: np.ndarray,
    lemmas: Sequence[list[str]],
    n_terms: int,
    *,
    counted: tuple[sparse.csr_matrix, list[str]] | None = None,
) -> dict[int, list[tuple[str, float]]]:
    """Top ``n_terms`` (term, score) per class by c-TF-IDF, BERTopic's formula.

    Written out rather than imported: it is four lines, and BERTopic would bring UMAP, HDBSCAN
    and plotly along. The counts per unit (``term_counts``, or ``counted`` when the caller has
    them already) are summed per class.
    """
    counted = counted or term_counts(lemmas)
    if counted is None:
        return {}
    counts, terms = counted
    labels = np.asarray(labels)
    classes, class_of_unit = np.unique(labels, return_inverse=True)
    membership = sparse.csr_matrix(
        (np.ones(len(labels)), (class_of_unit, np.arange(len(labels)))),
        shape=(len(classes), len(labels)),
    )
    class_counts = membership @ counts
    # c-TF-IDF: l1-normalised term frequency per class times log(1 + A / f), with A the average
    # number of words per class and f the frequency of the term over all classes.
    frequency = np.asarray(class_counts.sum(axis=0)).ravel()
    average_words = max(int(class_counts.sum(axis=1).mean()), 1)
    idf = np.log(average_words / frequency + 1)
    scores = normalize(class_counts, norm="l1").multiply(idf).tocsr()
    result = {}
    for row, cls in enumerate(classes):
        if cls == UNASSIGNED:
            continue
        row_scores = scores.getrow(row)
        # Highest score first; ties in term order, so the output never depends on hash order.
        ranked = sorted(zip(-row_scores.data, [terms[i] for i in row_scores.indices], strict=True))
        result[int(cls)] = [
            (str(term), float(-negated)) for negated, term in ranked[:n_terms] if negated < 0
        ]
    return result
