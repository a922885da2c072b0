"""Monthly partitions of model outputs on PostgreSQL (issue 17, "Retention"): a prune drops an old
month's partition, keeping what is linked or named in the kept partition, with the same ids;
output_id stays unique across months. PostgreSQL only (SQLite keeps one plain table)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from typer.testing import CliRunner

from triage import db, retention, rollups, store
from triage.cli import app
from triage.errors import ConflictError
from triage.link import SignalParams
from triage.models import (
    Feedback,
    FeedbackCreate,
    Link,
    ModelOutput,
    ModelOutputCreate,
    PipelineRun,
    utcnow,
)
from triage.store import partitions
from triage.store.partitions import Month

runner = CliRunner()
DAY = timedelta(days=1)


@pytest.fixture
def pg(engine):  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        pytest.skip("model_output is partitioned on PostgreSQL only")
    return engine


def _partitions(engine) -> set[str]:  # type: ignore[no-untyped-def]
    """Every partition under model_output, at any depth (the catalog's own answer)."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                text(
                    "SELECT relid::regclass::text FROM pg_partition_tree('model_output') "
                    "WHERE relid <> 'model_output'::regclass"
                )
            ).scalars()
        )


def _make_month(engine, month: Month) -> None:  # type: ignore[no-untyped-def]
    """A partition for a past month, as the migration makes for the months its rows are in."""
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {month.name} PARTITION OF model_output_live "
                f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
            )
        )


def _add(engine, names: list[str], **fields) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        accepted = store.add_model_outputs(session, items=[
            ModelOutputCreate(output_id=name, model="summarizer", output=f"Output {name}.",
                              **fields) for name in names])  # fmt: skip
    return {a.output_id: a.id for a in accepted}


def _arrived(engine, names: list[str], when) -> None:  # type: ignore[no-untyped-def]
    # Through the parent table: PostgreSQL moves each row to its month's partition.
    with db.session_scope(engine) as session:
        session.execute(
            update(ModelOutput)
            .where(col(ModelOutput.output_id).in_(names))
            .values(received_at=when)
        )


def _ticket(engine, external_id: str, output_id: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        [answer] = store.add_feedback(session, items=[
            FeedbackCreate(source="test", external_id=external_id, text="The summary is wrong.",
                           output_id=output_id)])  # fmt: skip
    return int(answer.id)


def _where(engine) -> dict[str, tuple[int, str]]:  # type: ignore[no-untyped-def]
    """Each stored output's id and the partition holding it, by output_id."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT output_id, id, tableoid::regclass::text FROM model_output")
        )
        return {output_id: (id_, table) for output_id, id_, table in rows}


def test_partitions_prune_drops_an_old_month_and_keeps_what_is_linked_or_named(settings, pg):  # type: ignore[no-untyped-def]
    now = utcnow()
    old = Month.of(now - 200 * DAY)
    _make_month(pg, old)
    ids = _add(pg, ["gone-1", "gone-2", "linked", "named", "created-late"], created_at=old.start)
    ids |= _add(pg, ["recent"])
    _arrived(pg, list(ids)[:5], old.start + 3 * DAY)
    with db.session_scope(pg) as session:  # created after the cutoff: must outlive its month
        session.execute(
            update(ModelOutput)
            .where(col(ModelOutput.output_id) == "created-late")
            .values(created_at=now - 10 * DAY)
        )
    linking = _ticket(pg, "T-1")
    with db.session_scope(pg) as session:
        session.add(Link(feedback_id=linking, model_output_id=ids["linked"], method="user",
                         confidence=0.8))  # fmt: skip
    _ticket(pg, "T-2", output_id="named")
    assert _where(pg)["gone-1"][1] == old.name

    pruned = runner.invoke(app, ["db", "prune"], catch_exceptions=False)

    assert pruned.exit_code == 0, pruned.stdout
    assert "deleted 2 model outputs" in pruned.stdout
    assert "1 monthly partitions dropped" in pruned.stdout
    assert old.name not in _partitions(pg)
    where = _where(pg)
    assert set(where) == {"linked", "named", "created-late", "recent"}
    assert {name: where[name][0] for name in where} == {name: ids[name] for name in where}
    assert {where[name][1] for name in ("linked", "named", "created-late")} == {"model_output_kept"}
    with db.session_scope(pg) as session:
        assert store.links_by_feedback(session) == {linking: [ids["linked"]]}
        assert store.get_model_output(session, output_id="linked").id == ids["linked"]
        # Traffic still counts every output, the two dropped with their partition too.
        assert sum(row.n for row in store.output_rollups(session)) == 6
        [run] = session.exec(select(PipelineRun).where(col(PipelineRun.kind) == "prune")).all()
        assert run.stats["partitions_dropped"] == 1 and run.stats["deleted"] == 2

    # A kept output goes, row by row, once its ticket does; its output_id is free again.
    with db.session_scope(pg) as session:
        session.execute(delete(Feedback).where(col(Feedback.id) == linking))
    result = retention.prune_outputs(pg, retention_days=90)
    assert (result.deleted, result.partitions_dropped) == (1, 0)
    assert set(_where(pg)) == {"named", "created-late", "recent"}
    assert _add(pg, ["linked"])["linked"] > max(ids.values())


def test_partitions_a_month_not_rolled_up_is_not_dropped(settings, pg):  # type: ignore[no-untyped-def]
    old = Month.of(utcnow() - 200 * DAY)
    _make_month(pg, old)
    _add(pg, ["a"], created_at=old.start)
    _arrived(pg, ["a"], old.start + DAY)
    with db.session_scope(pg) as session:
        assert store.prune_month(session, month=old, cutoff=utcnow(), max_id=0) is None
    assert old.name in _partitions(pg)


def test_partitions_output_id_stays_unique_across_months(settings, pg):  # type: ignore[no-untyped-def]
    old = Month.of(utcnow() - 200 * DAY)
    _make_month(pg, old)
    first = _add(pg, ["x"])["x"]
    _arrived(pg, ["x"], old.start + DAY)  # now in another partition than a resend would go to
    with db.session_scope(pg) as session:
        [again] = store.add_model_outputs(
            session,
            items=[ModelOutputCreate(output_id="x", model="summarizer", output="Output x.")],
        )
    assert again.duplicate and again.id == first
    with pytest.raises(ConflictError), db.session_scope(pg) as session:
        store.add_model_outputs(
            session, items=[ModelOutputCreate(output_id="x", model="summarizer", output="Other.")]
        )
    # A write that skips add_model_outputs is refused by the database, as UNIQUE did.
    with pytest.raises(IntegrityError), db.session_scope(pg) as session:
        session.add(ModelOutput(output_id="x", model="m", content_sha256="0"))
    assert list(_where(pg)) == ["x"]


def test_partitions_concurrent_ingestion_of_one_output_id_stores_one_row(settings, pg):  # type: ignore[no-untyped-def]
    item = ModelOutputCreate(output_id="same", model="summarizer", output="Output.")
    answers = []

    def resend() -> None:
        with db.session_scope(pg) as session:
            answers.extend(store.add_model_outputs(session, items=[item]))

    with db.session_scope(pg) as session:
        [first] = store.add_model_outputs(session, items=[item])
        second = threading.Thread(target=resend)
        second.start()
        second.join(0.5)
        assert second.is_alive()  # waits for the first's key, not past it
    second.join(10)
    assert [(a.id, a.duplicate) for a in answers] == [(first.id, True)]
    assert list(_where(pg)) == ["same"]


def test_partitions_the_roll_up_makes_the_coming_months(settings, pg):  # type: ignore[no-untyped-def]
    ahead = Month(Month(Month.of(utcnow()).end).end)
    with pg.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {ahead.name}"))
    assert ahead.name not in _partitions(pg)
    rollups.roll_up(pg, params=SignalParams())
    assert ahead.name in _partitions(pg)


def test_partitions_a_drop_gives_way_to_a_long_reader(settings, pg, monkeypatch):  # type: ignore[no-untyped-def]
    """A drop waits only so long for the table's lock; then the month is pruned row by row."""
    monkeypatch.setattr(partitions, "DROP_LOCK_WAIT_MS", 200)
    old = Month.of(utcnow() - 200 * DAY)
    _make_month(pg, old)
    _add(pg, ["a", "b"], created_at=old.start)
    _arrived(pg, ["a", "b"], old.start + DAY)
    with pg.connect() as reader:
        reader.execute(text("SELECT count(*) FROM model_output"))  # holds its lock until closed
        result = retention.prune_outputs(pg, retention_days=90)
    assert (result.deleted, result.partitions_dropped) == (2, 0)
    assert old.name in _partitions(pg) and _where(pg) == {}


def test_partitions_a_link_made_during_a_drop_keeps_its_output(settings, pg, monkeypatch):  # type: ignore[no-untyped-def]
    """The refresh's link step does not take the issues lock: a link committed between the move
    to the kept partition and the drop fails the drop (its foreign key), never dangles."""
    from triage.store import retention as store_retention

    old = Month.of(utcnow() - 200 * DAY)
    _make_month(pg, old)
    ids = _add(pg, ["a", "b"], created_at=old.start)
    _arrived(pg, ["a", "b"], old.start + DAY)
    ticket = _ticket(pg, "T-1")
    moved = store_retention.keep_rows

    def keep_then_link(session, **kwargs):  # type: ignore[no-untyped-def]
        count = moved(session, **kwargs)
        with pg.begin() as refresh:
            refresh.execute(
                text(
                    "INSERT INTO link (feedback_id, model_output_id, method, confidence, "
                    "created_at) VALUES (:f, :o, 'user', 0.8, now())"
                ),
                {"f": ticket, "o": ids["a"]},
            )
        return count

    monkeypatch.setattr(store_retention, "keep_rows", keep_then_link)
    result = retention.prune_outputs(pg, retention_days=90)
    assert (result.deleted, result.partitions_dropped) == (1, 0)  # "b", row by row
    assert old.name in _partitions(pg)
    with db.session_scope(pg) as session:
        assert store.links_by_feedback(session) == {ticket: [ids["a"]]}
        assert store.get_model_output(session, output_id="a").id == ids["a"]


def test_partitions_a_month_the_default_partition_holds_is_not_made(settings, pg):  # type: ignore[no-untyped-def]
    """A new partition may not overlap what the default one holds: such a month stays there (and
    is pruned row by row) rather than failing every roll-up."""
    ahead = Month(Month(Month.of(utcnow()).end).end)
    with pg.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {ahead.name}"))
    _add(pg, ["early"])
    _arrived(pg, ["early"], ahead.start + DAY)
    rollups.roll_up(pg, params=SignalParams())
    assert ahead.name not in _partitions(pg)
    assert _where(pg)["early"][1] == "model_output_live_default"
    with db.session_scope(pg) as session:
        session.execute(delete(ModelOutput))
    rollups.roll_up(pg, params=SignalParams())
    assert ahead.name in _partitions(pg)


def _analyzed_rows(engine) -> int:  # type: ignore[no-untyped-def]
    """The outputs the planner's statistics count, over every partition."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM "
                    "pg_partition_tree('model_output') t JOIN pg_class c ON c.oid = t.relid "
                    "WHERE t.isleaf"
                )
            ).scalar_one()
        )


def test_partitions_a_roll_up_of_a_backfill_analyzes_the_outputs(settings, pg):  # type: ignore[no-untyped-def]
    """Issue 17: statistics of a partition analyzed empty made the refresh's reads by id scan
    the month's partition. A roll-up of more than a tenth of what they count analyzes them,
    the partitioned table too (autovacuum never does); a smaller one leaves them."""
    _add(pg, [f"a{i}" for i in range(40)])
    rollups.roll_up(pg, params=SignalParams())
    assert _analyzed_rows(pg) == 40
    with pg.connect() as connection:
        assert connection.execute(
            text("SELECT count(*) FROM pg_stats WHERE tablename = 'model_output' AND inherited")
        ).scalar_one()
    _add(pg, ["b0", "b1", "b2", "b3"])  # a tenth
    rollups.roll_up(pg, params=SignalParams())
    assert _analyzed_rows(pg) == 40
    _add(pg, [f"c{i}" for i in range(5)])
    rollups.roll_up(pg, params=SignalParams())
    assert _analyzed_rows(pg) == 49
