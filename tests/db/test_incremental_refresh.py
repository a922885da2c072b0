"""A refresh redoes only what changed (issue 17): tickets whose inputs are the same keep their
decision, issues whose members, decisions, links and traffic are the same keep their labels,
category and evidence, and only their recency moves; the result is the one a full refresh
gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import select

from tests.db.test_pipeline import add, tickets
from triage import db, store
from triage.categorize import CATEGORIES, Categorizer, LabelledExamples, train_classifier
from triage.categorize.combiner import LearnedCombiner
from triage.categorize.domain import centre_groups, ladder_window
from triage.config import Settings
from triage.embed import text_hash
from triage.models import Feedback, FeedbackCreate, Issue, ModelOutputCreate, Unit
from triage.pipeline import Pipeline


@pytest.fixture
def pipeline(settings):  # type: ignore[no-untyped-def]
    return Pipeline(settings)


def snapshot(engine) -> tuple[list[Any], list[Any]]:  # type: ignore[no-untyped-def]
    """Every ticket's decision and every issue's labels, category, evidence and priority terms
    but recency (which moves with the clock between two refreshes)."""

    def dumped(value: Any) -> str:
        return json.dumps(value, sort_keys=True)

    with db.session_scope(engine) as session:
        decisions = [
            (f.id, f.category, f.category_confidence, dumped(f.category_probabilities),
             dumped(f.category_evidence))
            for f in session.exec(select(Feedback).order_by(Feedback.id))
        ]  # fmt: skip
        issues = [
            (i.id, i.title, i.category, i.category_confidence, i.keywords, i.quotes,
             dumped(i.evidence), dumped(i.model_versions), dumped(i.trend),
             dumped({k: v for k, v in i.priority_breakdown.items() if k != "recency"}))
            for i in session.exec(select(Issue).order_by(Issue.id))
        ]  # fmt: skip
    return decisions, issues


def outputs(prefix: str, n: int, *, version: str, start: datetime) -> list[ModelOutputCreate]:
    return [
        ModelOutputCreate(
            output_id=f"{prefix}-{i}", model="forecaster", model_version=version,
            output=f"Forecast {i}.", confidence=0.3 + 0.05 * (i % 10),
            created_at=start + timedelta(minutes=i), session_id=f"{prefix}-s{i}",
        )
        for i in range(n)
    ]  # fmt: skip


def linked_tickets(prefix: str, n: int) -> list[FeedbackCreate]:
    return [
        FeedbackCreate(
            source="test", external_id=f"numbers-linked-{prefix}-{i}", output_id=f"{prefix}-{i}",
            text="The forecast numbers for last month are wrong compared to our sales ledger.",
            customer_id=f"l{i}",
        )
        for i in range(n)
    ]  # fmt: skip


def add_outputs(engine, items: list[ModelOutputCreate]) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        store.add_model_outputs(session, items=items)


def forget_keys(engine) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        session.exec(update(Feedback).values(category_key=None))  # type: ignore[call-overload]
        session.exec(update(Issue).values(refresh_key=None))  # type: ignore[call-overload]


def test_incremental_refresh_with_nothing_new_decides_nothing_and_matches_a_full_one(
    engine, pipeline
):  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(days=3)
    add_outputs(engine, outputs("o", 8, version="v1", start=start))
    add(engine, tickets("export", 12) + tickets("numbers", 12) + linked_tickets("o", 4))
    _, first = pipeline.run(engine)
    assert first.decided == 28
    decided = snapshot(engine)

    again = pipeline.refresh(engine)
    assert (again.decided, again.issues_redone) == (0, 0)
    assert snapshot(engine) == decided

    # The same refresh, knowing nothing of the last one, decides everything to the same end.
    forget_keys(engine)
    full = pipeline.refresh(engine)
    assert full.decided == 28 and full.issues_redone == full.issues > 0
    assert snapshot(engine) == decided


def test_incremental_refresh_redoes_the_issue_a_new_ticket_joins_and_no_other(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    with db.session_scope(engine) as session:
        before = {i.id: (i.refresh_key, i.size) for i in store.active_issues(session)}

    add(engine, tickets("numbers", 2, customer="new"))
    _, stats = pipeline.run(engine)
    assert stats.decided == 2  # the two new tickets, unlinked: nothing else moved
    with db.session_scope(engine) as session:
        after = {i.id: (i.refresh_key, i.size) for i in store.active_issues(session)}
    grown = {i for i in after if after[i][1] != before.get(i, (None, 0))[1]}
    rekeyed = {i for i in after if after[i][0] != before.get(i, (None, 0))[0]}
    assert len(grown) == 1 and rekeyed == grown
    assert stats.issues_redone == 1

    # What was kept is what a full refresh gives.
    kept = snapshot(engine)
    forget_keys(engine)
    pipeline.refresh(engine)
    assert snapshot(engine) == kept


def test_incremental_refresh_decides_linked_tickets_again_when_traffic_moves(engine, pipeline):  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(days=3)
    add_outputs(engine, outputs("o", 8, version="v1", start=start))
    add(engine, tickets("export", 12) + linked_tickets("o", 4) + tickets("numbers", 8))
    pipeline.run(engine)

    # New traffic of another version: the linked tickets' evidence is compared with it.
    add_outputs(engine, outputs("p", 30, version="v2", start=start + timedelta(days=1)))
    stats = pipeline.refresh(engine)
    assert stats.rolled_up == 30
    assert stats.decided == 4  # the linked ones; the export tickets' inputs did not move

    kept = snapshot(engine)
    forget_keys(engine)
    pipeline.refresh(engine)
    assert snapshot(engine) == kept


def test_incremental_refresh_decides_everything_with_another_categorizer(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    # As after `triage train` wrote a new classifier: the stored decisions are not its own.
    pipeline.categorizer.fingerprint = "another"
    stats = pipeline.refresh(engine)
    assert stats.decided == 24 and stats.issues_redone == stats.issues


def test_refresh_says_how_far_rolling_up_a_backfill_is(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12))
    pipeline.run(engine)
    add_outputs(engine, outputs("b", 30, version="v1", start=datetime.now(UTC) - timedelta(days=1)))
    seen: list[tuple[int, int]] = []
    stats = pipeline.refresh(engine, within=lambda done, total: seen.append((done, total)))
    assert stats.rolled_up == 30 and seen and seen[-1] == (30, 30)


def test_refresh_decides_each_ticket_whole_and_embeds_it_once(engine, pipeline, monkeypatch):  # type: ignore[no-untyped-def]
    # The classifier learned from whole tickets: a ticket of several statements is decided on
    # them read as one text, whose vector the cache keeps for the next time it is decided.
    two = "The export button does nothing. Also the forecast numbers are wrong for last month."
    add(
        engine, [*tickets("export", 12), FeedbackCreate(source="test", external_id="two", text=two)]
    )
    pipeline.run(engine)
    with db.session_scope(engine) as session:
        (ticket,) = session.exec(select(Feedback).where(Feedback.external_id == "two")).all()
        statements = session.exec(
            select(Unit.text).where(Unit.feedback_id == ticket.id).order_by(Unit.id)
        ).all()
        whole = " ".join(statements)
        assert len(statements) == 2
        assert store.cached_vectors(
            session, text_hashes=[text_hash(whole)], model_id=pipeline.embedder.model_id
        )

    embedded: list[str] = []
    real = pipeline.embedder.embed
    monkeypatch.setattr(
        pipeline.embedder, "embed", lambda texts, **kw: embedded.extend(texts) or real(texts, **kw)
    )
    forget_keys(engine)
    assert pipeline.refresh(engine).decided == 13
    assert whole not in embedded  # from the cache


def test_tickets_are_decided_again_only_when_the_centre_of_their_database_moves(engine, pipeline):  # type: ignore[no-untyped-def]
    # A classifier trained on centred vectors (as `triage train` trains) reads each ticket
    # against its database's tickets: their mean is taken on a window that moves only at the
    # ladder's steps (16, 22, 32, ...), so a ticket that does not reach a step decides nothing
    # but itself, and one that does decides all.
    texts = [t.text for t in tickets("export", 4) + tickets("numbers", 4)]
    vectors, prior = centre_groups(pipeline.embedder.embed(texts), ["a"] * 4 + ["b"] * 4)
    pipeline.categorizer.classifier = train_classifier(
        texts, vectors, ["ui"] * 4 + ["data"] * 4, domain_prior=prior
    )
    pipeline.categorizer.fingerprint = "centred"
    assert pipeline.categorizer.domain_prior is not None
    assert ladder_window(20) == ladder_window(21) == (0, 16) and ladder_window(22) == (0, 22)
    add(engine, tickets("export", 10) + tickets("numbers", 10))
    _, first = pipeline.run(engine)
    assert first.decided == 20

    add(engine, tickets("numbers", 1, customer="new"))
    _, below = pipeline.run(engine)
    assert below.decided == 1

    add(engine, tickets("export", 1, customer="new"))
    _, step = pipeline.run(engine)
    assert step.decided == 22

    kept = snapshot(engine)
    forget_keys(engine)
    pipeline.refresh(engine)
    assert snapshot(engine) == kept


def test_a_ticket_hears_its_nearest_tickets_and_kept_decisions_still_match_a_full_refresh(
    engine, pipeline
):  # type: ignore[no-untyped-def]
    # A learned categorizer (here: the classifier's probabilities passed through) whose
    # combiner gives the nearest tickets' own probabilities a weight, as `triage train` learns.
    texts = [t.text for t in tickets("export", 4) + tickets("numbers", 4)]
    labels = ["ui"] * 4 + ["data"] * 4
    vectors, prior = centre_groups(pipeline.embedder.embed(texts), ["a"] * 4 + ["b"] * 4)
    classifier = train_classifier(texts, vectors, labels, domain_prior=prior)
    names = [f"classifier_log_p_{c}" for c in CATEGORIES]
    combiner = LearnedCombiner(
        classes=list(CATEGORIES), feature_names=names, coef=np.eye(4), intercept=np.zeros(4),
        mean=np.zeros(4), scale=np.ones(4), neighbour_weight=0.5,
    )  # fmt: skip
    categorizer = Categorizer(
        pipeline.categorizer.cues, LabelledExamples(texts, vectors, labels), classifier,
        combiner=combiner,
    )  # fmt: skip
    categorizer.fingerprint = "with-neighbours"
    pipeline._categorizer = categorizer  # as if loaded from its folder
    assert categorizer.neighbour_weight == 0.5

    add(engine, tickets("export", 10) + tickets("numbers", 10))
    _, first = pipeline.run(engine)
    assert first.decided == 20
    with db.session_scope(engine) as session:
        stored = session.exec(select(Feedback).order_by(Feedback.id)).all()
        # What people read says what the neighbours added (after what the other tickets of
        # its issue added, heard last); what is kept is the ticket's own.
        lines = [[e for e in f.category_evidence if e["signal"] == "neighbours"] for f in stored]
        assert all(len(found) == 1 for found in lines)
        assert all(
            found[0]["data"]["weight"] == 0.5 and found[0]["data"]["neighbours"] == 5
            for found in lines
        )
        assert any(
            abs(f.category_confidence - max(f.category_probabilities.values())) > 1e-6
            for f in stored
        )

    # A new ticket is decided alone, but its neighbours may read differently: what is kept
    # and written is what a refresh that knows nothing of the last one gives.
    add(engine, tickets("numbers", 1, customer="new"))
    _, second = pipeline.run(engine)
    assert second.decided == 1
    kept = snapshot(engine)
    forget_keys(engine)
    assert pipeline.refresh(engine).decided == 21
    assert snapshot(engine) == kept


def test_a_ticket_hears_the_other_tickets_of_its_issue_which_aggregates_their_own(
    engine, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    Pipeline(settings).run(engine)
    with db.session_scope(engine) as session:
        stored = session.exec(select(Feedback).order_by(Feedback.id)).all()
        issues = {i.id: i for i in session.exec(select(Issue))}
        heard = [f for f in stored if f.category_evidence[0]["signal"] == "issue"]
        assert heard, "no ticket heard its issue"
        weight = settings.categorize_issue_weight
        for f in heard:
            line = f.category_evidence[0]["data"]
            assert line["weight"] == weight and line["peers"] >= 1
            assert set(line["issues"]) <= set(issues)
            # What it shows is its own (as the refresh left it) mixed with its peers' mean.
            mixed = {
                c: (1 - weight) * line["before"][c] + weight * line["mean_probabilities"][c]
                for c in CATEGORIES
            }
            assert f.category == max(mixed, key=mixed.__getitem__)
            assert f.category_confidence == pytest.approx(max(mixed.values()), abs=1e-3)
        # Each issue's category is its members' own decisions' aggregate, before the mix.
        for issue in issues.values():
            assert issue.evidence[0]["signal"] == "tickets"
            assert "on their own evidence" in issue.evidence[0]["reason"]
    kept = snapshot(engine)

    # Turned off: every ticket shows its own decision again, and the issues are the same.
    monkeypatch.setenv("TRIAGE_CATEGORIZE_ISSUE_WEIGHT", "0")
    Pipeline(Settings()).refresh(engine)
    with db.session_scope(engine) as session:
        assert not any(
            e["signal"] == "issue"
            for f in session.exec(select(Feedback))
            for e in f.category_evidence
        )
    assert snapshot(engine)[1] == kept[1]
