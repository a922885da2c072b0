"""Stage "label": give each issue (a cluster of units) keywords, a title and quotes.

Keywords come from class-based TF-IDF (``keywords``). The title is the clause of the issue's
own statements that best names the thing and its failure (``titles``), because a sentence a
customer wrote reads like an issue title ("Export button does nothing") where a keyword list
does not. Quotes are the units closest to the cluster's centre, one per ticket, without
near-duplicates (``quotes``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import normalize

from triage.errors import InvalidInputError
from triage.label.keywords import UNASSIGNED, class_tfidf, class_tfidf_keywords, term_counts
from triage.label.meaning import Meaning
from triage.label.quotes import pick_quotes
from triage.label.titles import TitleContext, choose_titles
from triage.label.wordspace import WordSpace

__all__ = ["UNASSIGNED", "IssueLabel", "class_tfidf", "class_tfidf_keywords", "label_issues"]

# Terms of c-TF-IDF a title candidate is scored against: a few more than the keywords shown,
# so a title can name the thing in words just below the top.
TITLE_TERMS = 10
# Statements repeat (templates, copies), so titles look this many rows deep per distinct
# statement they need.
TITLE_ROWS_PER_CANDIDATE = 5


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
    tickets: Sequence[Hashable] | None = None,
    n_keywords: int = 8,
    n_quotes: int = 5,
    max_quote_similarity: float = 0.95,
    max_quote_overlap: float = 0.85,
    title_max_words: int = 12,
    title_candidates: int = 20,
    only: Collection[int] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> dict[int, IssueLabel]:
    """Label every cluster in ``labels`` (or those in ``only``, the others then serving as the
    background their words and titles are told apart from); ``UNASSIGNED`` units only serve as
    background.

    ``texts``, ``lemmas``, ``tickets`` (the ticket each unit comes from, so one ticket gives at
    most one quote) and the rows of ``vectors`` are aligned with ``labels``; texts must already
    be redacted, since quotes are shown to people verbatim. ``embed`` (texts -> normalised
    rows, the embedder of ``vectors``) lets the best title candidates be judged on their own
    meaning (``triage.label.meaning``); without it they are judged on their words alone.
    """
    label_array = _check_inputs(labels, texts, lemmas, vectors, tickets, n_keywords, n_quotes)
    clusters = sorted({int(label) for label in label_array} - {UNASSIGNED})
    if not clusters or (only is not None and not set(only) & set(clusters)):
        return {}
    counted = term_counts(lemmas)
    scored = class_tfidf(label_array, lemmas, max(n_keywords, TITLE_TERMS), counted=counted)
    unit_vectors = normalize(np.asarray(vectors, dtype=np.float32))  # cheap insurance for cosines
    members = {cluster: np.flatnonzero(label_array == cluster) for cluster in clusters}
    centroids = normalize(np.stack([unit_vectors[members[c]].mean(axis=0) for c in clusters]))
    contexts, quotes = {}, {}
    for position, cluster in enumerate(clusters):
        if only is not None and cluster not in only:
            continue
        rows = members[cluster]
        closeness = unit_vectors[rows] @ centroids[position]
        order = np.argsort(-closeness, kind="stable")  # ties keep input order
        central = rows[order]
        # Titles come from the most central statements; only those need their cosine to every
        # other centroid, which for all of 100k units would cost more than the rest.
        head = order[: TITLE_ROWS_PER_CANDIDATE * title_candidates]
        similarity = unit_vectors[rows[head]] @ centroids.T
        similarity[:, position] = -np.inf
        nearest_other = similarity.max(axis=1) if len(clusters) > 1 else np.zeros(len(head))
        contexts[cluster] = TitleContext(
            keywords=scored.get(cluster, [])[:TITLE_TERMS],
            central=central[: len(head)],
            closeness=closeness[head],
            margin=closeness[head] - nearest_other,
            position=position,
        )
        quotes[cluster] = pick_quotes(
            central,
            texts,
            unit_vectors,
            tickets,
            n_quotes=n_quotes,
            max_similarity=max_quote_similarity,
            max_overlap=max_quote_overlap,
        )
    # Every unit's words, the background's too: a word's meaning is where all its uses point.
    words = WordSpace.build(*counted, unit_vectors, centroids) if counted else None
    meaning = None if embed is None else Meaning(embed, unit_vectors, centroids)
    titles = choose_titles(
        contexts,
        texts,
        max_words=title_max_words,
        candidates=title_candidates,
        words=words,
        meaning=meaning,
    )
    return {
        cluster: IssueLabel(
            title=titles[cluster],
            keywords=[term for term, _ in scored.get(cluster, [])[:n_keywords]],
            quotes=quotes[cluster],
        )
        for cluster in contexts
    }


def _check_inputs(
    labels: Sequence[int],
    texts: Sequence[str],
    lemmas: Sequence[list[str]],
    vectors: np.ndarray,
    tickets: Sequence[Hashable] | None,
    n_keywords: int,
    n_quotes: int,
) -> np.ndarray:
    label_array = np.asarray(labels, dtype=np.int64).reshape(-1)
    shape = np.shape(vectors)
    if (
        not len(label_array) == len(texts) == len(lemmas)
        or (tickets is not None and len(tickets) != len(label_array))
        or (len(label_array) and (len(shape) != 2 or shape[0] != len(label_array)))
    ):
        raise InvalidInputError(
            "labels, texts, lemmas, tickets and vectors must describe the same units: got "
            f"{len(label_array)} labels, {len(texts)} texts, {len(lemmas)} lemma lists, "
            f"{'no' if tickets is None else len(tickets)} tickets and vectors of shape {shape}."
        )
    if n_keywords < 1 or n_quotes < 1:
        raise InvalidInputError("n_keywords and n_quotes must be at least 1.")
    return label_array
