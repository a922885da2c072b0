"""Reading a ticket against its own product: each vector is centred on the mean of its product's
tickets before the classifier and the nearest examples see it.

All of one product's tickets share a direction in embedding space (its screens, its domain
words) that says nothing about the cause; a classifier trained on seven products learns those
products' directions and misreads the eighth's. Subtracting each product's own mean removes
what the product's tickets share and leaves what sets a ticket apart from its neighbours, the
usual first step of domain adaptation. Measured leave-one-product-out on feedback-dev (whole
tickets, without the clustering, the same folds in one run): per-ticket macro-F1 0.737 -> 0.770,
7 of 8 products better. Centring on the mean of the products' statement vectors instead gave
0.748: the mean is taken over whole tickets, as they are decided.

A product with few tickets has a noisy mean, so the mean is shrunk towards the training
products' average mean (``prior``) as if ``PRIOR_TICKETS`` tickets had been that average. With
one ticket the centred vector points from the prior to the ticket whatever that weight; with
fifty it is the product's own mean within 2%. The mean-squared-error choice, the ratio of the
spread within a product to the spread between products' means (about 8 tickets on feedback-dev
and the fixtures), lost 0.02 of that macro-F1 against no shrinking at all: the classifier is
trained on products whose offsets are then partly left in, and learns them. One ticket's weight
keeps a lone ticket readable and loses nothing measurable (0.768 with the refresh's window).

Training centres each product's rows on that product's mean (``centre_groups``); a refresh
centres every ticket on the mean of its database's tickets (``pipeline.tickets``), one customer's
feedback, on a fixed window that moves only when the number of tickets grows by a step of the
ladder (``ladder_window``), so a refresh between steps keeps every stored decision.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from triage.cluster import normalize

# How many tickets the prior counts as: the weight of the training products' average mean
# against a new product's own tickets (see the module docstring).
PRIOR_TICKETS = 1
# The centre is computed on at most this many tickets: the mean of a thousand unit vectors is
# within about 1/30 of a spread of the true mean in every direction.
WINDOW_TICKETS = 1000
# The window moves when the number of tickets has grown by this factor since it last moved:
# every ticket is decided again then, so the total work stays a constant multiple of the
# tickets (about 3.4 decisions per ticket over a database's life).
LADDER_STEP = math.sqrt(2.0)


def shrunk_mean(vectors: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """The mean of ``vectors`` with ``prior`` counted ``PRIOR_TICKETS`` times."""
    vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, len(prior))
    total = vectors.sum(axis=0) + PRIOR_TICKETS * np.asarray(prior, dtype=np.float64)
    return (total / (len(vectors) + PRIOR_TICKETS)).astype(np.float32)


def centre(vectors: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``vectors`` minus ``mean``, back to unit length (cosine is what every signal reads)."""
    return normalize(np.asarray(vectors, dtype=np.float32) - mean)


def centre_groups(vectors: np.ndarray, groups: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(each row centred on its group's shrunk mean, the prior): the prior is the average of
    the groups' plain means, each group counted once whatever its size."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.array([str(g) for g in groups])
    names = sorted(set(labels.tolist()))
    means = {name: vectors[labels == name].mean(axis=0) for name in names}
    prior = np.mean([means[name] for name in names], axis=0).astype(np.float32)
    centred = np.empty_like(vectors)
    for name in names:
        rows = labels == name
        centred[rows] = centre(vectors[rows], shrunk_mean(vectors[rows], prior))
    return centred, prior


def ladder_window(count: int) -> tuple[int, int]:
    """(start, stop) positions, in the order tickets were stored, of the tickets the centre is
    computed on when ``count`` are stored: the last ``WINDOW_TICKETS`` before the highest step
    of the ladder 1, 2, 4, 5, 8, 11, 16, 22, 32, ... (powers of ``LADDER_STEP``, rounded down)
    not above ``count``. Between two steps the window, and so every decision, stays the same."""
    if count <= 0:
        return 0, 0
    stop, power = 1, 1
    while (step := int(LADDER_STEP ** (power + 1))) <= count:
        stop, power = step, power + 1
    return max(0, stop - WINDOW_TICKETS), stop


@dataclass(frozen=True)
class DomainCentre:
    """What a ticket's vector is centred on before it is decided; ``mean`` None: nothing (the
    classifier reads plain vectors)."""

    mean: np.ndarray | None = None

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return vectors if self.mean is None else centre(vectors, self.mean)

    @property
    def digest(self) -> str:
        """Part of each ticket's key: a decision stays only while its centre does."""
        if self.mean is None:
            return ""
        return hashlib.sha256(
            np.ascontiguousarray(self.mean, dtype=np.float32).tobytes()
        ).hexdigest()
