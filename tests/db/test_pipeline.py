"""The whole loop on a database, with the fake embedder: process, cluster, keep identities."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from sqlmodel import select

from tests.support.reliability import note
from triage import db, store
from triage.embed import FakeEmbedder, vector_from_bytes
from triage.models import Feedback, FeedbackCreate, Issue, Membership, Unit
from triage.pipeline import PHASES, Pipeline, load_units
from triage.preprocess.units import joined_vector

TOPICS = {
    "export": [
        "The export button does nothing when I click it on the report screen.",
        "Clicking export on the report screen does nothing at all.",
        "Export button on the report screen is dead, nothing happens.",
        "Nothing happens when I press the export button on the report screen.",
        "The report screen export button does nothing for me.",
    ],
    "numbers": [
        "The forecast numbers for last month are wrong compared to our sales ledger.",
        "Forecast numbers for last month do not match our sales ledger at all.",
        "Our sales ledger and the forecast numbers for last month disagree.",
        "Last month's forecast numbers are wrong versus the sales ledger.",
        "The sales ledger shows different numbers than the forecast for last month.",
    ],
    "language": [
        "The reply drafter answers Spanish customers in German every time.",
        "Spanish customers get reply drafts written in German.",
        "Reply drafter writes German replies to Spanish customers.",
        "Our Spanish customers keep getting German reply drafts.",
        "Drafted replies to Spanish customers come out in German.",
    ],
}
_counter = itertools.count()


def tickets(topic: str, n: int, *, customer: str = "c") -> list[FeedbackCreate]:
    phrasings = itertools.cycle(TOPICS[topic])
    return [
        FeedbackCreate(
            source="test",
            external_id=f"{topic}-{next(_counter)}",
            text=next(phrasings),
            customer_id=f"{customer}{i % 7}",
        )
        for i in range(n)
    ]


def add(engine, items) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        store.add_feedback(session, items=items)


@pytest.fixture
def pipeline(settings):  # type: ignore[no-untyped-def]
    return Pipeline(settings)


def issue_of_topic(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The main issue of each topic's tickets."""
    with db.session_scope(engine) as session:
        rows = session.exec(
            select(Feedback.external_id, Membership.issue_id)
            .join(Unit, Unit.feedback_id == Feedback.id)
            .join(Membership, Membership.unit_id == Unit.id)
        ).all()
    found: dict[str, dict[int, int]] = {}
    for external_id, issue_id in rows:
        votes = found.setdefault(external_id.split("-")[0], {})
        votes[issue_id] = votes.get(issue_id, 0) + 1
    return {topic: max(votes, key=votes.get) for topic, votes in found.items()}  # type: ignore[arg-type]


def test_pipeline_run_turns_tickets_into_issues(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12) + tickets("language", 12))
    processed, refreshed = pipeline.run(engine)
    assert processed.processed == 36 and processed.failed == 0
    assert refreshed.reclustered and refreshed.issues >= 3
    topics = issue_of_topic(engine)
    assert len(set(topics.values())) == 3  # three topics, three different issues
    with db.session_scope(engine) as session:
        assert store.count_feedback_by_status(session) == {"processed": 36}
        issue = session.get(Issue, topics["export"])
        assert issue.title and issue.keywords and 3 <= len(issue.quotes) <= 5
        assert any("export" in k for k in issue.keywords)
        assert issue.size == sum(1 for m in store.memberships(session) if m.issue_id == issue.id)
        rows = list(store.export_feedback(session))
    assert all(row["issue_id"] is not None for row in rows)


def test_pipeline_refresh_names_each_phase_as_it_starts(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 10) + tickets("numbers", 10))
    seen: list[str] = []
    pipeline.run(engine, phase=seen.append)
    assert seen == list(PHASES)  # the first run clusters, so every phase runs, in order
    seen.clear()
    pipeline.refresh(engine, phase=seen.append)
    assert seen == [p for p in PHASES if p not in ("cluster", "titles", "issues")]  # no re-cluster


def test_pipeline_refresh_lets_writers_in_while_it_decides(engine, pipeline, record_property):  # type: ignore[no-untyped-def]
    note(record_property, fault="tickets stored while a refresh loads, decides and clusters",
         tried=3, checked="each store goes through at once (no write lock held meanwhile); "
         "the refresh completes and the new tickets wait, pending")  # fmt: skip
    add(engine, tickets("export", 10) + tickets("numbers", 10))
    pipeline.process_pending(engine)
    stored: list[str] = []

    def phase(name: str) -> None:
        if name in ("load", "categorize", "cluster"):
            # The API storing a ticket meanwhile: on SQLite it needs the one write lock.
            add(engine, tickets("language", 1))
            stored.append(name)

    refreshed = pipeline.refresh(engine, phase=phase)
    assert stored == ["load", "categorize", "cluster"] and refreshed.issues >= 2
    with db.session_scope(engine) as session:
        assert store.count_feedback_by_status(session) == {"processed": 20, "pending": 3}


def test_pipeline_processing_lets_writers_in_and_writes_only_what_is_still_pending(
    engine, pipeline, record_property
):  # type: ignore[no-untyped-def]
    note(record_property, fault="a ticket stored, and one taken by another process, while a "
         "worker preprocesses and embeds its batch", tried=1,
         checked="on SQLite the store goes through at once; the batch writes only the tickets "
         "still pending as it read them, each once")  # fmt: skip
    add(engine, tickets("export", 6))
    with db.session_scope(engine) as session:
        first = min(f.id for f in session.exec(select(Feedback)))
    process = pipeline.preprocessor.process

    def meanwhile(texts):  # type: ignore[no-untyped-def]
        if not stored:  # the first batch only
            add(engine, tickets("language", 1))  # the API storing a ticket
            stored.append(True)
            if db.is_sqlite(engine):  # (PostgreSQL: the worker holds this row meanwhile)
                with db.session_scope(engine, write_lock=True) as session:  # another process
                    taken = session.get(Feedback, first)
                    taken.attempts, taken.status = taken.attempts + 1, "processed"
        return process(texts)

    stored: list[bool] = []

    pipeline.preprocessor.process = meanwhile
    processed = pipeline.process_pending(engine)
    with db.session_scope(engine) as session:
        rows = {f.id: f for f in session.exec(select(Feedback))}
        units = session.exec(select(Unit)).all()
    assert processed.processed >= 6 and len(rows) >= 7
    assert stored and rows[max(rows)].status == "processed"  # the stored one, in a later batch
    if db.is_sqlite(engine):  # read, then written: the taken ticket is left to its taker
        assert rows[first].attempts == 1 and rows[first].redacted_text is None
        assert first not in {u.feedback_id for u in units}
    # Every other ticket processed exactly once, with its units written once.
    for feedback_id, row in rows.items():
        if feedback_id != first and row.status == "processed":
            assert row.attempts == 1
    per_ticket = Counter((u.feedback_id, u.position) for u in units)
    assert set(per_ticket.values()) == {1}


def test_pipeline_never_embeds_the_same_text_twice(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 10))  # five phrasings, each twice
    first, _ = pipeline.run(engine)
    assert first.units == 10 and first.embedded == 5 and first.cache_hits == 5
    add(engine, tickets("export", 3))
    again, _ = pipeline.run(engine)
    assert again.embedded == 0 and again.cache_hits == 3


def test_pipeline_joins_statements_about_the_same_thing(engine, pipeline):  # type: ignore[no-untyped-def]
    same = (
        "The CSV export fails for large files. The CSV export fails for large files every "
        "single time."
    )
    two = "The CSV export fails for large files. Spanish customers get reply drafts in German."
    opened = "The CSV export fails for large files. Also, the CSV export fails for large files."
    add(engine, [FeedbackCreate(source="test", external_id=f"join-{i}", text=t)
                 for i, t in enumerate([same, two, opened])])  # fmt: skip
    stats = pipeline.process_pending(engine)
    with db.session_scope(engine) as session:
        units = session.exec(select(Unit).order_by(Unit.feedback_id, Unit.position)).all()
        ids = [
            session.exec(select(Feedback.id).where(Feedback.external_id == f"join-{i}")).one()
            for i in range(3)
        ]
        by_ticket = [[u.text for u in units if u.feedback_id == f] for f in ids]
        cached = store.cached_vectors(
            session, text_hashes=[u.text_hash for u in units], model_id=pipeline.embedder.model_id
        )
    # one unit, its text the whole span, and a vector for that text
    assert by_ticket[0] == [same]
    assert by_ticket[1] == [
        "The CSV export fails for large files.",
        "Spanish customers get reply drafts in German.",
    ]
    # "Also, ..." opens a new topic: never joined, however similar
    assert len(by_ticket[2]) == 2
    assert stats.units == 5 and len(cached) == len({u.text_hash for u in units})


def test_a_joined_unit_is_not_embedded_again(engine, settings):  # type: ignore[no-untyped-def]
    """Its vector is its statements' averaged, stored under its text like any unit's, so
    neither processing nor the refresh embeds the joined text."""
    embedder = Counting()
    pipeline = Pipeline(settings, embedder=embedder)
    statements = [
        "The CSV export fails for large files.",
        "The CSV export fails for large files every single time.",
    ]
    add(engine, [FeedbackCreate(source="test", external_id="joined", text=" ".join(statements))])
    pipeline.run(engine)
    with db.session_scope(engine) as session:
        (unit,) = session.exec(select(Unit)).all()
        (stored,) = store.cached_vectors(
            session, text_hashes=[unit.text_hash], model_id=embedder.model_id
        ).values()
    assert unit.text == " ".join(statements) and unit.text not in embedder.seen
    expected = joined_vector(embedder.embed(statements), statements)
    assert np.allclose(vector_from_bytes(stored), expected, atol=1e-6)


def test_pipeline_assigns_new_units_to_existing_issues(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    before = issue_of_topic(engine)
    add(engine, tickets("export", 2))
    stats = pipeline.process_pending(engine)
    assert stats.assigned == 2
    with db.session_scope(engine) as session:
        newest = session.exec(select(Unit).order_by(Unit.id.desc()).limit(2)).all()
        members = {m.unit_id: m for m in store.memberships(session)}
    assert {members[u.id].issue_id for u in newest} == {before["export"]}
    assert {members[u.id].method for u in newest} == {"assigned"}


def test_pipeline_keeps_issue_ids_and_human_titles_across_reclustering(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    before = issue_of_topic(engine)
    with db.session_scope(engine) as session:
        store.update_issue(session, issue_id=before["numbers"], changes={"title": "Ledger gap"},
                           api_key_id=None, actor="test")  # fmt: skip
    add(engine, tickets("export", 6) + tickets("numbers", 6) + tickets("language", 12))
    _, refreshed = pipeline.run(engine, recluster=True)
    assert refreshed.reclustered
    after = issue_of_topic(engine)
    assert after["export"] == before["export"] and after["numbers"] == before["numbers"]
    assert after["language"] not in before.values()
    with db.session_scope(engine) as session:
        assert session.get(Issue, before["numbers"]).title == "Ledger gap"


def test_pipeline_records_a_merge_in_lineage(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    ids = issue_of_topic(engine)
    # A person merges the two issues; the next re-clustering separates them again, and the
    # merged issue stays merged: its units are the person's, kept as manual memberships.
    with db.session_scope(engine) as session:
        store.merge_issues(session, issue_id=ids["numbers"], into=ids["export"],
                           api_key_id=None, actor="test")  # fmt: skip
    pipeline.run(engine, recluster=True)
    with db.session_scope(engine) as session:
        merged = session.get(Issue, ids["numbers"])
        survivor = session.get(Issue, ids["export"])
        assert merged.merged_into == ids["export"]
        assert survivor.size == 24
    events = [e["event"] for e in merged.lineage]
    assert "merged_into" in events


def test_pipeline_marks_a_ticket_with_nothing_to_triage_failed(engine, pipeline):  # type: ignore[no-untyped-def]
    empty = FeedbackCreate(source="test", external_id="emoji", text="👍👍👍")
    add(engine, [*tickets("export", 6), empty])
    processed, _ = pipeline.run(engine)
    assert processed.failed == 1 and processed.processed == 6
    with db.session_scope(engine) as session:
        rows, _ = store.list_feedback(session, status="failed")
        assert [r.external_id for r in rows] == ["emoji"] and rows[0].last_error
    again, _ = pipeline.run(engine, retry_failed=True)
    assert again.failed == 1  # tried again, still nothing to triage, still recorded


def test_pipeline_drops_raw_text_when_told(engine, settings):  # type: ignore[no-untyped-def]
    pipeline = Pipeline(settings.model_copy(update={"keep_raw_text": False}))
    text = "Mail me at jo@example.com, the export button is broken."
    add(engine, [FeedbackCreate(source="t", external_id="1", text=text)])
    pipeline.process_pending(engine)
    with db.session_scope(engine) as session:
        row = session.exec(select(Feedback)).one()
    assert row.text is None and "jo@example.com" not in row.redacted_text
    assert row.status == "processed"


def test_pipeline_reopens_a_resolved_issue_as_regressed(engine, pipeline):  # type: ignore[no-untyped-def]
    add(engine, tickets("export", 12) + tickets("numbers", 12))
    pipeline.run(engine)
    export = issue_of_topic(engine)["export"]
    with db.session_scope(engine) as session:
        store.update_issue(session, issue_id=export, changes={"status": "resolved"},
                           api_key_id=None, actor="test")  # fmt: skip
    add(engine, tickets("export", 2))
    pipeline.process_pending(engine)
    with db.session_scope(engine) as session:
        issue = session.get(Issue, export)
    assert issue.status == "regressed"
    assert issue.lineage[-1]["event"] == "regressed"


def test_pipeline_processing_stops_after_a_batch_when_told(engine, settings):  # type: ignore[no-untyped-def]
    # A worker whose refresh falls due while tickets keep arriving must get out of the loop:
    # "nothing pending" may never come.
    pipeline = Pipeline(settings.model_copy(update={"worker_batch_size": 2}))
    add(engine, tickets("export", 5))
    asked = []
    first = pipeline.process_pending(engine, until=lambda: asked.append(1) or True)
    assert first.processed + first.failed == 2 and len(asked) == 1
    rest = pipeline.process_pending(engine, until=lambda: False)
    assert rest.processed + rest.failed == 3


def test_pipeline_refresh_embeds_again_what_another_model_embedded(engine, settings):  # type: ignore[no-untyped-def]
    # Processed under one embedding model, refreshed under another (a changed backend, or a
    # newer export of the model): every unit is clustered, not only the ones the new model saw.
    add(engine, tickets("export", 12) + tickets("numbers", 12) + tickets("language", 12))
    Pipeline(settings).run(engine)
    with db.session_scope(engine) as session:
        texts = {u.text_hash for u in session.exec(select(Unit)).all()}
    before = issue_of_topic(engine)
    other = Pipeline(settings, embedder=FakeEmbedder(dim=32))
    refreshed = other.refresh(engine)
    assert refreshed.reembedded == len(texts)
    assert not refreshed.skipped and refreshed.reclustered and refreshed.issues >= 3
    assert issue_of_topic(engine) == before  # formed again, and kept their ids
    assert len(set(issue_of_topic(engine).values())) == 3
    with db.session_scope(engine) as session:
        assert store.units_without_vector(session, model_id="fake-32") == {}
        assert len(load_units(session, model_id="fake-32").ids) == 36
    again = other.refresh(engine)
    assert again.reembedded == 0 and not again.reclustered


class Counting(FakeEmbedder):
    """The fake embedder, keeping every text it embedded (not those the cache served)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return super().embed_batch(texts)


def test_pipeline_embeds_a_title_candidate_once_across_refreshes(engine, settings):  # type: ignore[no-untyped-def]
    embedder = Counting()
    pipeline = Pipeline(settings, embedder=embedder)
    add(engine, tickets("export", 12) + tickets("numbers", 12) + tickets("language", 12))
    pipeline.run(engine)
    with db.session_scope(engine) as session:
        unit_texts = {u.text for u in session.exec(select(Unit)).all()}
        for issue in session.exec(select(Issue)).all():
            issue.refresh_key = None  # every issue labelled again by the next refresh
            session.add(issue)
    # Titles' clauses went through the vector cache, beside the statements.
    assert set(embedder.seen) - unit_texts
    embedder.seen.clear()
    assert pipeline.refresh(engine).issues_redone >= 3
    assert embedder.seen == []


def test_pipeline_embeds_titles_of_a_reclustering_before_its_write_transaction(
    engine, settings, monkeypatch
):  # type: ignore[no-untyped-def]
    """After a re-clustering every issue is labelled; its title clauses are embedded before the
    write transaction (on SQLite ingestion waits for it), so labelling inside embeds nothing."""
    from triage.pipeline import pipeline as module

    embedder = Counting()
    inside: list[str] = []
    real = module.relabel

    def relabel(*args, **kwargs):  # type: ignore[no-untyped-def]
        before = len(embedder.seen)
        real(*args, **kwargs)
        inside.extend(embedder.seen[before:])

    monkeypatch.setattr(module, "relabel", relabel)
    add(engine, tickets("export", 12) + tickets("numbers", 12) + tickets("language", 12))
    _, refreshed = Pipeline(settings, embedder=embedder).run(engine)
    assert refreshed.reclustered and refreshed.issues >= 3
    with db.session_scope(engine) as session:
        unit_texts = {u.text for u in session.exec(select(Unit)).all()}
        titles = [issue.title for issue in session.exec(select(Issue)).all()]
    assert set(embedder.seen) - unit_texts  # clauses were embedded: before the transaction
    assert inside == []
    assert all(titles)
