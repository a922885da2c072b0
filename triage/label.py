"""Stage "label": give each issue (a cluster of units) keywords, a title and quotes.

Keywords come from class-based TF-IDF, BERTopic's c-TF-IDF: all units of a cluster form one
document, so a word scores high when it is frequent in this cluster and rare in the others. The
title is the most central short clause that covers the keywords, because a sentence a customer
wrote reads like an issue title ("Export button does nothing") where a keyword list does not.
Quotes are the units closest to the cluster's centre, minus near-duplicates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.preprocessing import normalize

from triage.errors import InvalidInputError

UNASSIGNED = -1

TITLE_MIN_WORDS = 3
TITLE_MAX_WORDS = 8
# The title is looked for among this many of the most central units.
TITLE_CANDIDATES = 10

# Sentence punctuation only counts before a space, so "e.g.", ".docx" and "1:1" stay whole.
_CLAUSE_BREAK = re.compile(
    r"[.!?;:]+(?=\s|$)|\n+|\s+[-–—]+\s+|,\s+(?=(?:but|however|and|so|although)\b)"
)
_FILLER = re.compile(
    r"^(?:(?:also|and|but|so|plus|however|unfortunately|honestly|again|still|btw|ps|ok|okay|well"
    r"|hi|hello|hey|please|yes|no|then|now|oh|sadly|the|a|an)(?:[\s,]+|$))+",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"<[A-Z]+>")
_URL = re.compile(r"\w+://|www\.", re.IGNORECASE)
_WORD = re.compile(r"\w+(?:['’]\w+)*")
_NOT_ALNUM = re.compile(r"[\W_]+")
# A title opening with these needs the sentence before it to make sense ("It only answers ...").
_VAGUE_OPENERS = frozenset(
    {"it", "this", "that", "they", "them", "these", "those", "as", "so", "which", "there"}
)  # fmt: skip
_TRAILING = re.compile(r"[^\w)'\"’”]+$")


@dataclass(frozen=True)
class IssueLabel:
    title: str
    keywords: list[str]
    quotes: list[str]  # redacted unit texts, most central first


def label_issues(
    labels: Sequence[int],
    texts: Sequence[str],
    lemmas: Sequence[list[str]],
    vectors: np.ndarray,
    *,
    n_keywords: int = 8,
    n_quotes: int = 5,
    max_quote_similarity: float = 0.95,
) -> dict[int, IssueLabel]:
    """Label every cluster in ``labels``; ``UNASSIGNED`` units only serve as background.

    ``texts``, ``lemmas`` and the rows of ``vectors`` are aligned with ``labels``; texts must
    already be redacted, since quotes are shown to people verbatim.
    """
    label_array = _check_inputs(labels, texts, lemmas, vectors, n_keywords, n_quotes)
    clusters = sorted({int(label) for label in label_array} - {UNASSIGNED})
    if not clusters:
        return {}
    keywords = class_tfidf_keywords(label_array, lemmas, n_keywords)
    unit_vectors = normalize(np.asarray(vectors, dtype=np.float32))  # cheap insurance for cosines
    issues = {}
    for cluster in clusters:
        members = np.flatnonzero(label_array == cluster)
        central = members[_centrality_order(unit_vectors[members])]
        issues[cluster] = IssueLabel(
            title=_title(central[:TITLE_CANDIDATES], texts, keywords.get(cluster, [])),
            keywords=keywords.get(cluster, []),
            quotes=_quotes(central, texts, unit_vectors, n_quotes, max_quote_similarity),
        )
    return issues


def class_tfidf_keywords(
    labels: np.ndarray, lemmas: Sequence[list[str]], n_keywords: int
) -> dict[int, list[str]]:
    """Top unigrams and bigrams per class by c-TF-IDF, BERTopic's formula.

    Written out rather than imported: it is four lines, and BERTopic would bring UMAP, HDBSCAN
    and plotly along. Each unit is its own CountVectorizer document and the counts are summed
    per class, so no bigram spans two units.
    """
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english")
    try:
        counts = vectorizer.fit_transform(" ".join(unit) for unit in lemmas)
    except ValueError:  # no term at all: every unit was empty or only stop words
        return {}
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
    keywords = {}
    for row, cls in enumerate(classes):
        if cls == UNASSIGNED:
            continue
        row_scores = scores.getrow(row)
        # Highest score first; ties in term order, so the output never depends on hash order.
        ranked = sorted(zip(-row_scores.data, terms[row_scores.indices], strict=True))
        keywords[int(cls)] = [str(term) for negated, term in ranked[:n_keywords] if negated < 0]
    return keywords


def _check_inputs(
    labels: Sequence[int],
    texts: Sequence[str],
    lemmas: Sequence[list[str]],
    vectors: np.ndarray,
    n_keywords: int,
    n_quotes: int,
) -> np.ndarray:
    label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    shape = np.shape(vectors)
    if not len(label_array) == len(texts) == len(lemmas) or (
        len(label_array) and (len(shape) != 2 or shape[0] != len(label_array))
    ):
        raise InvalidInputError(
            "labels, texts, lemmas and vectors must describe the same units: got "
            f"{len(label_array)} labels, {len(texts)} texts, {len(lemmas)} lemma lists and "
            f"vectors of shape {shape}."
        )
    if n_keywords < 1 or n_quotes < 1:
        raise InvalidInputError("n_keywords and n_quotes must be at least 1.")
    return label_array


def _centrality_order(vectors: np.ndarray) -> np.ndarray:
    """Indices of ``vectors``, closest to their centroid (cosine) first; ties keep input order."""
    centroid = vectors.mean(axis=0)
    norm = np.linalg.norm(centroid)
    if norm == 0:
        return np.arange(len(vectors))
    return np.argsort(-(vectors @ (centroid / norm)), kind="stable")


def _quotes(
    central: np.ndarray,
    texts: Sequence[str],
    vectors: np.ndarray,
    n_quotes: int,
    max_similarity: float,
) -> list[str]:
    picked: list[int] = []
    seen: set[str] = set()
    for index in central:
        key = _NOT_ALNUM.sub(" ", texts[index].lower()).strip()
        if not key or key in seen:
            continue
        if picked and float(np.max(vectors[picked] @ vectors[index])) > max_similarity:
            continue
        picked.append(int(index))
        seen.add(key)
        if len(picked) == n_quotes:
            break
    return [texts[index] for index in picked]


def _title(central: np.ndarray, texts: Sequence[str], keywords: list[str]) -> str:
    """The most central clause of 3-8 words among those covering most of the top keywords."""
    keyword_words = list(
        dict.fromkeys(word for keyword in keywords[:3] for word in keyword.split())
    )
    best, best_score = "", -1.0
    for index in central:  # most central first, so it wins ties
        for clause in _clauses(texts[index]):
            words = [word.lower() for word in _WORD.findall(clause)]
            # Prefix match stands in for lemmatising the clause: "buttons" covers "button".
            score: float = sum(any(word.startswith(k) for word in words) for k in keyword_words)
            if words[0] in _VAGUE_OPENERS:
                score -= 0.5
            if score > best_score:
                best, best_score = clause, score
    if best:
        return best[:1].upper() + best[1:]
    if keywords:
        return f"Problems with {keywords[0]}"
    return "Unnamed issue"


def _clauses(text: str) -> list[str]:
    """The parts of a unit that could serve as a title: 3-8 words, no placeholder or link."""
    clauses = []
    for part in _CLAUSE_BREAK.split(text):
        clause = _TRAILING.sub("", _FILLER.sub("", part.strip(" \t,")))
        n_words = len(_WORD.findall(clause))
        if (
            TITLE_MIN_WORDS <= n_words <= TITLE_MAX_WORDS
            and not _PLACEHOLDER.search(clause)
            and not _URL.search(clause)
            and _balanced(clause)
        ):
            clauses.append(clause)
    return clauses


def _balanced(clause: str) -> bool:
    """No bracket or quotation left open: a clause cut out of a longer quote reads broken."""
    if clause.count("(") != clause.count(")") or clause.count('"') % 2:
        return False
    quotes = sum(
        1
        for i, char in enumerate(clause)
        if char in "'‘’"
        and not (0 < i < len(clause) - 1 and clause[i - 1].isalnum() and clause[i + 1].isalnum())
    )
    return quotes % 2 == 0
