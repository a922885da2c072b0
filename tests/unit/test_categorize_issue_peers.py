"""A ticket hears the other tickets of its issues (``categorize.issue_peers``,
``pipeline.peers.with_issue_peers``): mixed by the weight, itself left out, never overwritten by
a weak majority, and a ticket in no issue keeps its own decision."""

from __future__ import annotations

import numpy as np
import pytest

from triage.categorize import CATEGORIES, Evidence
from triage.categorize.issue_peers import peers
from triage.pipeline.peers import ISSUE_SIGNAL, decision_of, with_issue_peers


def _probabilities(**values: float) -> dict[str, float]:
    return {c: values.get(c, 0.0) for c in CATEGORIES}


def test_peers_are_the_other_members_of_each_issue_a_row_joined_itself_left_out() -> None:
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    # Row 0 is in issues 7 and 9; rows 1 and 2 in one each; row 3 in none; row 4 alone in 5.
    heard = peers(p, [{7, 9}, {7}, {9}, set(), {5}])
    assert heard.counts.tolist() == [2, 1, 1, 0, 0]
    assert heard.means[0] == pytest.approx([0.0, 1.0])  # rows 1 and 2
    assert heard.means[1] == pytest.approx([1.0, 0.0])  # row 0
    assert np.isnan(heard.means[3]).all() and np.isnan(heard.means[4]).all()
    mixed = heard.mix(p, 0.5)
    assert mixed[0] == pytest.approx([0.5, 0.5])
    assert mixed[1] == pytest.approx([0.5, 0.5])
    assert mixed[3] == pytest.approx([0.5, 0.5]) and mixed[4] == pytest.approx([0.2, 0.8])
    assert (heard.mix(p, 0.0) == p).all()


def test_a_peer_shared_through_two_issues_counts_once_per_issue() -> None:
    p = np.array([[1.0, 0.0], [0.0, 1.0], [0.4, 0.6]])
    heard = peers(p, [{1, 2}, {1, 2}, {2}])
    assert heard.counts.tolist() == [3, 3, 2]
    assert heard.means[0] == pytest.approx([(0.0 + 0.0 + 0.4) / 3, (1.0 + 1.0 + 0.6) / 3])


def test_peers_of_a_large_issue_are_summed_not_listed() -> None:
    # 20,000 rows in one issue: each row's peers' mean without listing 20,000 peers for each.
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=20_000)
    heard = peers(p, [{1}] * len(p))
    assert heard.counts[0] == len(p) - 1
    assert heard.means[7] == pytest.approx((p.sum(axis=0) - p[7]) / (len(p) - 1))


def test_a_ticket_hears_its_issue_says_so_and_keeps_what_it_had_before() -> None:
    words = [Evidence("own", "words", "model", 1.0)]
    own = {
        1: decision_of(_probabilities(model=0.6, data=0.4), words),
        2: decision_of(_probabilities(data=0.9, model=0.1), []),
        3: decision_of(_probabilities(data=0.8, model=0.2), []),
        4: decision_of(_probabilities(ui=0.7, expectation=0.3), []),
    }  # fmt: skip
    heard = with_issue_peers(own, {1: {11}, 2: {11}, 3: {11}}, 0.5)
    # Ticket 1 leaned model on its own; its two peers say data: the mix decides data.
    assert heard[1].category == "data"
    assert heard[1].probabilities["data"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.85)
    line = heard[1].evidence[0]
    assert line.signal == ISSUE_SIGNAL and line.category == "data"
    assert "2 other tickets of its issue #11 lean data" in line.reason
    assert "against its own (model 0.60)" in line.reason
    assert line.data["before"] == pytest.approx(own[1].probabilities)
    assert line.data["peers"] == 2 and line.data["weight"] == 0.5
    assert heard[1].evidence[1:] == own[1].evidence
    # Ticket 4 is in no issue: its own decision, untouched.
    assert heard[4] == own[4]
    # Weight 0: nothing heard.
    assert with_issue_peers(own, {1: {11}, 2: {11}}, 0.0) == own


def test_a_ticket_surer_of_its_own_than_its_issue_keeps_it() -> None:
    own = {
        1: decision_of(_probabilities(data=0.9, model=0.1), []),
        2: decision_of(_probabilities(model=0.7, data=0.3), []),
        3: decision_of(_probabilities(model=0.7, data=0.3), []),
        4: decision_of(_probabilities(data=0.52, model=0.48), []),
        5: decision_of(_probabilities(model=0.7, data=0.3), []),
    }
    heard = with_issue_peers(own, {f: {3} for f in own}, 0.5)
    # Ticket 1's peers lean model (0.65 against 0.35), less surely than it leans data.
    assert heard[1].category == "data"
    # Ticket 4 barely leans data on its own; its peers lean model more surely.
    assert heard[4].category == "model"
