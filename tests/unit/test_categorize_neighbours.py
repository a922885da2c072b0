"""A ticket's category informed by its nearest tickets (``triage.categorize.neighbours``), and
the weight the combiner learns for them."""

from __future__ import annotations

import numpy as np

from tests.unit.test_categorize_combiner import rows
from triage.categorize import CATEGORIES
from triage.categorize.combiner import LearnedCombiner, fit_combiner
from triage.categorize.neighbours import NEIGHBOURS, WEIGHTS, fit_weight, nearest, smooth
from triage.cluster import normalize


def test_nearest_finds_the_closest_other_rows_within_the_window():
    vectors = normalize(np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99], [0.98, 0.2]]))
    near = nearest(vectors, k=2)
    assert near.shape == (5, 2)
    assert set(near[0].tolist()) == {1, 4} and set(near[2].tolist()) == {3, 4}
    assert all(row not in near[row] for row in range(5))
    # Only the last three rows are candidates: the first row's neighbours come from them.
    assert set(nearest(vectors, k=2, window=3)[0].tolist()) == {4, 3}
    assert nearest(vectors[:1]).shape == (1, 0)


def test_smoothing_mixes_a_ticket_with_its_neighbours_by_the_weight():
    probabilities = np.array([[0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    near = np.array([[1, 2], [0, 2], [0, 1]])
    mixed = smooth(probabilities, near, 0.5)
    np.testing.assert_allclose(mixed[0], [0.5 * 0.6 + 0.5 * 0.15, 0.5 * 0.4 + 0.5 * 0.85])
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    np.testing.assert_array_equal(smooth(probabilities, near, 0.0), probabilities)
    np.testing.assert_array_equal(smooth(probabilities, near[:, :0], 0.5), probabilities)


def _tickets(shared_cause: bool, seed: int = 0):  # type: ignore[no-untyped-def]
    """Three products of tickets in tight groups of six; within a group every ticket has one
    label when ``shared_cause``, else labels at random. Each ticket's own probabilities name
    its label two times in three."""
    rng = np.random.default_rng(seed)
    probabilities, vectors, labels, groups = [], [], [], []
    for product in ("a", "b", "c"):
        for group in range(8):
            centre = rng.normal(size=16)
            label = CATEGORIES[group % 4]
            for _ in range(6):
                mine = label if shared_cause else CATEGORIES[int(rng.integers(4))]
                said = mine if rng.uniform() < 2 / 3 else CATEGORIES[int(rng.integers(4))]
                p = np.full(4, 0.1)
                p[CATEGORIES.index(said)] = 0.7
                probabilities.append(p)
                vectors.append(centre + 0.1 * rng.normal(size=16))
                labels.append(mine)
                groups.append(product)
    return np.array(probabilities), normalize(np.array(vectors)), labels, groups


def test_the_weight_is_learned_and_none_is_given_when_neighbours_say_nothing():
    probabilities, *rest = _tickets(shared_cause=True)
    weight, scores, mixed = fit_weight(probabilities, *rest, CATEGORIES)
    assert weight > 0 and scores[f"{weight:g}"] > scores["0"]
    assert mixed.shape == probabilities.shape and not np.allclose(mixed, probabilities)
    assert set(scores) == {f"{w:g}" for w in WEIGHTS}
    weight, scores, _ = fit_weight(*_tickets(shared_cause=False), CATEGORIES)
    assert weight == 0.0


def test_the_combiner_keeps_its_neighbour_weight(tmp_path):  # type: ignore[no-untyped-def]
    x, labels, groups = rows(n_per_product=20)
    rng = np.random.default_rng(3)
    # Rows of one label sit together in each product.
    centres = {label: rng.normal(size=8) for label in CATEGORIES}
    vectors = normalize(np.array([centres[y] + 0.2 * rng.normal(size=8) for y in labels]))
    combiner = fit_combiner(x, labels, groups, vectors=vectors)
    assert combiner.neighbour_weight in WEIGHTS
    assert combiner.card["neighbours"]["k"] == NEIGHBOURS
    combiner.save(tmp_path)
    assert LearnedCombiner.load(tmp_path).neighbour_weight == combiner.neighbour_weight
    assert LearnedCombiner.load(tmp_path).card["neighbours"]["macro_f1_by_weight"]
