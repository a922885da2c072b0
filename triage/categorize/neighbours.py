"""A ticket's category informed by the tickets most like it: its own probabilities mixed with the
mean of its ``NEIGHBOURS`` nearest tickets' own, in the space the classifier reads (whole
tickets, centred on their product's mean: ``domain``).

Tickets about one root cause are written alike and share their cause, so what the nearest
tickets say on their own evidence is evidence for this one too (the cluster assumption behind
label propagation), and a ticket that does not name its cause borrows it from those that do.
The mix is the ticket's own probabilities times (1 - w) plus its neighbours' mean times w. The
weight w is not set by hand: ``triage train`` picks it from ``WEIGHTS`` by the macro-F1 of the
combiner's leave-one-product-out predictions, each smoothed among the held-out product's own
rows (``fit_weight``), and 0 (nothing borrowed) wins ties. The card records every weight's
figure.

``NEIGHBOURS`` is below the clusterer's smallest issue (``TRIAGE_CLUSTER_MIN_ISSUE_SIZE``, 8
statements), so a ticket's neighbours can all sit in one issue of the smallest size; in a bigger
database issues hold more tickets and the five nearest are more surely of the same one.
Neighbours are looked for among the most recent ``NEIGHBOUR_WINDOW`` tickets, which bounds a
refresh's cost at any number of tickets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from triage.cluster import nearest_neighbors

NEIGHBOURS = 5
# The signal of the evidence line a ticket gets when it hears its neighbours (``pipeline.peers``).
NEIGHBOURS_SIGNAL = "neighbours"
WEIGHTS = (0.0, 0.25, 0.5, 0.75)
NEIGHBOUR_WINDOW = 10_000


def nearest(vectors: np.ndarray, *, k: int = NEIGHBOURS, window: int = NEIGHBOUR_WINDOW) -> Any:
    """``(n, min(k, candidates - 1))`` indices of each row's most cosine-similar other rows
    among the last ``window`` rows (unit-length rows; each row's own index excluded).

    ``cluster.nearest_neighbors`` finds the ``k + 1`` best, a row's own among them when it is a
    candidate; the ``k`` best of those other than itself are kept."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    start = max(0, n - window)
    k = min(k, n - start - 1)
    if n < 2 or k <= 0:
        return np.empty((n, 0), dtype=np.int64)
    candidates = nearest_neighbors(vectors, vectors[start:], k + 1) + start
    scores = np.einsum("nd,nkd->nk", vectors, vectors[candidates])
    scores[candidates == np.arange(n)[:, None]] = -np.inf  # a ticket is not its own neighbour
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, best, axis=1)


def smooth(probabilities: np.ndarray, neighbours: np.ndarray, weight: float) -> np.ndarray:
    """Each row's probabilities times (1 - ``weight``) plus the mean of its ``neighbours``'
    (rows of ``nearest``) times ``weight``; unchanged without neighbours or weight."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if weight <= 0 or neighbours.shape[1] == 0:
        return probabilities
    return (1.0 - weight) * probabilities + weight * probabilities[neighbours].mean(axis=1)


def fit_weight(
    probabilities: np.ndarray,
    vectors: np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str],
    classes: Sequence[str],
) -> tuple[float, dict[str, float], np.ndarray]:
    """(the weight of ``WEIGHTS`` whose smoothing gives the best macro-F1, each weight's
    macro-F1, the probabilities smoothed at that weight): ``probabilities`` are out-of-fold
    (columns in ``classes`` order), and each row's neighbours are looked for among its own
    group's (product's) rows, as a refresh looks among its database's tickets. Ties go to the
    smaller weight."""
    from sklearn.metrics import f1_score

    neighbours = _by_group(vectors, groups)
    present = sorted(set(labels))
    scores: dict[str, float] = {}
    best, best_score, best_mixed = 0.0, -1.0, np.asarray(probabilities, dtype=np.float64)
    for weight in WEIGHTS:
        mixed = _smooth_by_group(probabilities, neighbours, weight)
        predicted = [classes[i] for i in mixed.argmax(axis=1)]
        score = float(f1_score(list(labels), predicted, labels=present, average="macro"))
        scores[f"{weight:g}"] = round(score, 4)
        if score > best_score + 1e-9:
            best, best_score, best_mixed = weight, score, mixed
    return best, scores, best_mixed


def _by_group(vectors: np.ndarray, groups: Sequence[str]) -> list[tuple[np.ndarray, Any]]:
    """(rows, their ``nearest`` among those rows) for each group."""
    groups_array = np.array([str(g) for g in groups])
    found = []
    for group in sorted(set(groups_array)):
        rows = np.flatnonzero(groups_array == group)
        found.append((rows, nearest(vectors[rows])))
    return found


def _smooth_by_group(
    probabilities: np.ndarray, neighbours: list[tuple[np.ndarray, Any]], weight: float
) -> np.ndarray:
    """``smooth`` within each group (``_by_group``): a product's rows mixed with their nearest
    rows of the same product, as a refresh mixes its database's tickets."""
    mixed = np.asarray(probabilities, dtype=np.float64).copy()
    for rows, near in neighbours:
        mixed[rows] = smooth(mixed[rows], near, weight)
    return mixed
