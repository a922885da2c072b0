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
from dataclasses import dataclass

import numpy as np

# The weights ``make eval`` compares (``TRIAGE_CATEGORIZE_ISSUE_WEIGHT`` is one of them). At
# most one half: a ticket's own evidence counts at least as much as its peers' mean.
WEIGHTS = (0.0, 0.25, 0.5)
# The signal of the evidence line a ticket gets when it hears its issue (``pipeline.peers``).
ISSUE_SIGNAL = "issue"


@dataclass(frozen=True)
class Peers:
    """Each row's peers' mean probabilities (NaN for a row without peers) and how many peers
    it has. A row's peers are the other members of each issue it joined, counted once per
    issue they share with it (a row in two issues with the same ticket hears it twice)."""

    means: np.ndarray
    counts: np.ndarray

    def mix(self, probabilities: np.ndarray, weight: float) -> np.ndarray:
        """Each row's probabilities times (1 - ``weight``) plus its peers' mean times
        ``weight``; a row without peers unchanged."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if weight <= 0:
            return probabilities
        has = self.counts > 0
        mixed = probabilities.copy()
        mixed[has] = (1.0 - weight) * probabilities[has] + weight * self.means[has]
        return mixed


def peers(probabilities: np.ndarray, memberships: Sequence[Iterable[int]]) -> Peers:
    """The ``Peers`` of rows of ``probabilities`` given each row's issues (``memberships``:
    one collection of issue ids per row, empty for a row in no issue). Sums per issue, then
    each row's own taken out again: linear in the memberships at any issue size."""
    from scipy import sparse

    probabilities = np.asarray(probabilities, dtype=np.float64)
    issue_ids = sorted({i for issues in memberships for i in issues})
    column = {issue: k for k, issue in enumerate(issue_ids)}
    rows = [r for r, issues in enumerate(memberships) for _ in set(issues)]
    columns = [column[i] for issues in memberships for i in set(issues)]
    joined = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, columns)), shape=(len(memberships), len(issue_ids))
    )
    issues_joined = np.asarray(joined.sum(axis=1)).ravel()
    sums = joined @ (joined.T @ probabilities) - issues_joined[:, None] * probabilities
    counts = joined @ np.asarray(joined.sum(axis=0)).ravel() - issues_joined
    means = np.full_like(probabilities, np.nan)
    has = counts > 0
    means[has] = sums[has] / counts[has, None]
    return Peers(means, counts.astype(np.int64))
