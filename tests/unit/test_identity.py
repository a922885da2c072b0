"""Stable identity and people's corrections: an issue a person made keeps its id."""

from __future__ import annotations

import numpy as np

from triage.identity import match_issues


def test_identity_an_issue_that_keeps_manual_members_is_not_retired():
    # Issue 2 was split off by a person: its units are manual, so no cluster holds them.
    previous = {1: set(range(30)), 2: {100, 101, 102}}
    centroids = {1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0])}
    clusters = {0: set(range(30))}
    found = {0: np.array([1.0, 0.0])}
    plain = match_issues(previous, centroids, clusters, found, min_overlap=0.5, min_similarity=0.9)
    assert plain.retired == {2}  # without saying so, it looks retired
    kept = match_issues(previous, centroids, clusters, found, min_overlap=0.5,
                        min_similarity=0.9, kept={2})  # fmt: skip
    assert kept.retired == set() and kept.issue_for_cluster == {0: 1}
