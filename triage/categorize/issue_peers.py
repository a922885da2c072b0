"""A ticket's category informed by its issue: its probabilities mixed with the mean of the other
tickets in the issues it is part of, each on its own evidence.

An issue forms from tickets written alike and leaning the same way (``cluster.Clusterer`` reads
their category probabilities as a cause), so what its other members say is evidence for each of
them, wider than a ticket's few nearest neighbours (``neighbours``): a ticket that does not name
its cause borrows it from the tickets it was grouped with. The mix is the ticket's own
probabilities times (1 - w) plus its peers' mean times w, the ticket itself left out of the
mean, so a ticket is never simply overwritten by its issue's majority; a ticket in no issue
keeps its own.

The weight w (``TRIAGE_CATEGORIZE_ISSUE_WEIGHT``, 0.5) is at most one half, so a ticket's own
evidence always counts at least as much as its peers': a ticket surer of its own category than
its issue is of the majority's keeps it, and the issue never simply overwrites its members.
Within that, ``make eval`` works out every weight of ``WEIGHTS`` from each leave-one-product-out
run of feedback-dev and picks, for each product, the weight best on the other seven (nested);
it chose 0.5 for all eight. It is not learned in ``triage train``: clustering the training
products' tickets (or their statements) with their cross-validated probabilities as the cause
and mixing the same way gave no gain there (0.828 to 0.827), where the same mix on the
leave-one-product-out runs' own issues gave 0.804 to 0.849; the same clustering on a refresh's
own probabilities reproduced the refresh's issues and gain, so the simulation does not stand
for a refresh and its answer (no weight) was not taken. A higher weight helped feedback-dev
further (0.864 at 0.75) but on the fixtures, whose issues hold one cause across products, it
turned nearly every ticket into its issue's majority (0.872 to 0.841).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

# The weights ``make eval`` compares (``TRIAGE_CATEGORIZE_ISSUE_WEIGHT`` is one of them). At
# most one half: a ticket's own evidence counts at least as much as its peers' mean.
WEIGHTS = (0.0, 0.25, 0.5)


def peers_of(memberships: Sequence[Iterable[int]]) -> list[list[int]]:
    """Each row's peers: the other rows that share an issue with it, given each row's issues
    (``memberships``, one collection of issue ids per row; empty for a row in no issue)."""
    members: dict[int, set[int]] = {}
    for row, issues in enumerate(memberships):
        for issue in issues:
            members.setdefault(issue, set()).add(row)
    return [
        sorted(set().union(*(members[i] for i in issues)) - {row}) if issues else []
        for row, issues in enumerate(map(set, memberships))
    ]


def peer_means(probabilities: np.ndarray, peers: Sequence[Sequence[int]]) -> np.ndarray:
    """Each row's peers' mean probabilities; NaN for a row without peers."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    means = np.full_like(probabilities, np.nan)
    for row, others in enumerate(peers):
        if others:
            means[row] = probabilities[list(others)].mean(axis=0)
    return means


def mix(probabilities: np.ndarray, peers: Sequence[Sequence[int]], weight: float) -> np.ndarray:
    """Each row's probabilities times (1 - ``weight``) plus its peers' mean times ``weight``;
    a row without peers unchanged."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if weight <= 0:
        return probabilities
    means = peer_means(probabilities, peers)
    has = ~np.isnan(means[:, 0])
    mixed = probabilities.copy()
    mixed[has] = (1.0 - weight) * probabilities[has] + weight * means[has]
    return mixed
