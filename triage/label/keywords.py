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


def class_tfidf(
    labels: np.ndarray, lemmas: Sequence[list[str]], n_terms: int
) -> dict[int, list[tuple[str, float]]]:
    """Top ``n_terms`` (term, score) per class by c-TF-IDF, BERTopic's formula.

    Written out rather than imported: it is four lines, and BERTopic would bring UMAP, HDBSCAN
    and plotly along. Each unit is its own CountVectorizer document and the counts are summed
    per class, so no bigram spans two units.
    """
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english")
    try:
        counts = vectorizer.fit_transform(" ".join(unit) for unit in lemmas)
    except ValueError:  # no term at all: every unit was empty or only stop words
        return {}
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
    terms = vectorizer.get_feature_names_out()
    result = {}
    for row, cls in enumerate(classes):
        if cls == UNASSIGNED:
            continue
        row_scores = scores.getrow(row)
        # Highest score first; ties in term order, so the output never depends on hash order.
        ranked = sorted(zip(-row_scores.data, terms[row_scores.indices], strict=True))
        result[int(cls)] = [
            (str(term), float(-negated)) for negated, term in ranked[:n_terms] if negated < 0
        ]
    return result
