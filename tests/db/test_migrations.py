"""Schema migrations upgrade a database that already holds data, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from triage import db

PG_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):  # type: ignore[no-untyped-def]
    """A database with no schema at all, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need TRIAGE_TEST_POSTGRES_URL (set by .ci/run)")
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"triage_migration_{os.getpid()}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    db.get_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_0002_adds_ticket_category_to_existing_feedback(empty_url):  # type: ignore[no-untyped-def]
    db.upgrade(empty_url, "0001")
    engine = db.get_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO feedback (source, external_id, text, text_sha256, received_at, "
                "status, attempts) VALUES ('s', '1', 'an old ticket', 'x', "
                "CURRENT_TIMESTAMP, 'processed', 1)"
            )
        )
    db.upgrade(empty_url, "0002")
    assert db.schema_state(engine)[0] == "0002"
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT category, category_confidence, category_evidence FROM feedback")
        ).one()
    evidence = row[2] if isinstance(row[2], list) else json.loads(row[2])
    assert row[0] is None and row[1] is None and evidence == []


def test_migrations_0003_leaves_existing_api_keys_unbound(empty_url):  # type: ignore[no-untyped-def]
    """Keys made before source binding keep writing every source (issue 14)."""
    from triage import store
    from triage.models import Scope

    db.upgrade(empty_url, "0002")
    engine = db.get_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_key (name, scope, prefix, key_hash, created_at) "
                "VALUES ('old', 'ingest', 'trg_old', 'h', CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0003")
    assert db.schema_state(engine)[0] == "0003"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT sources FROM api_key")).scalar_one() is None
    with db.session_scope(engine) as session:
        store.create_api_key(
            session, scope=Scope.ingest, name="bound", sources=["zendesk", "intercom"]
        )
    with db.session_scope(engine) as session:
        assert [k.sources for k in store.list_api_keys(session)] == [None, ["intercom", "zendesk"]]


def test_migrations_0004_marks_merged_issues_and_adds_confirmed_category(empty_url):  # type: ignore[no-untyped-def]
    """Issues merged before the `merged` status get it; no statement is labelled by itself."""
    db.upgrade(empty_url, "0003")
    engine = db.get_engine(empty_url)
    columns = (
        "title, status, keywords, quotes, human_fields, evidence, priority, priority_breakdown, "
        "size, customers, trend, model_versions, lineage, created_at, updated_at"
    )
    values = "'{t}', 'open', '[]', '[]', '[]', '[]', 0, '{{}}', 0, 0, '{{}}', '[]', '[]', " + (
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"
    )
    with engine.begin() as connection:
        connection.execute(
            text(f"INSERT INTO issue ({columns}) VALUES ({values.format(t='kept')})")
        )
        connection.execute(
            text(
                f"INSERT INTO issue ({columns}, merged_into) VALUES ({values.format(t='gone')}, 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO feedback (source, external_id, text, text_sha256, received_at, "
                "status, attempts) VALUES ('s', '1', 'old', 'x', CURRENT_TIMESTAMP, 'processed', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO unit (feedback_id, position, text, lemmas, text_hash, created_at) "
                "VALUES (1, 0, 'old', 'old', 'h', CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0004")
    assert db.schema_state(engine)[0] == "0004"
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT title, status FROM issue ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [("kept", "open"), ("gone", "merged")]
        assert connection.execute(text("SELECT confirmed_category FROM unit")).scalar_one() is None
    from alembic import command

    command.downgrade(db.alembic_config(empty_url), "0003")
    with engine.connect() as connection:
        statuses = connection.execute(text("SELECT status FROM issue ORDER BY id")).scalars()
        assert list(statuses) == ["open", "open"]


def test_migrations_0005_gives_issues_an_attach_threshold_that_starts_empty(empty_url):  # type: ignore[no-untyped-def]
    """Issues from before keep using the global threshold until their next re-clustering."""
    db.upgrade(empty_url, "0004")
    engine = db.get_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO issue (title, status, keywords, quotes, human_fields, evidence, "
                "priority, priority_breakdown, size, customers, trend, model_versions, lineage, "
                "created_at, updated_at) VALUES ('old', 'open', '[]', '[]', '[]', '[]', 0, '{}', "
                "0, 0, '{}', '[]', '[]', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0005")
    assert db.schema_state(engine)[0] == "0005"
    with engine.connect() as connection:
        row = connection.execute(text("SELECT title, attach_threshold FROM issue")).one()
        assert tuple(row) == ("old", None)
    from alembic import command

    command.downgrade(db.alembic_config(empty_url), "0004")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT title FROM issue")).scalar_one() == "old"


def test_migrations_0006_existing_outputs_are_rolled_up_by_the_first_roll_up(empty_url):  # type: ignore[no-untyped-def]
    """Outputs logged before the rollups existed count in traffic after the upgrade (issue 17)."""
    from triage.link import SignalParams
    from triage.rollups import roll_up

    db.upgrade(empty_url, "0005")
    engine = db.get_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO model_output (output_id, model, confidence, created_at, "
                "content_sha256, received_at) VALUES ('o1', 'summarizer', 0.5, "
                "CURRENT_TIMESTAMP, 'x', CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0006")
    assert db.schema_state(engine)[0] == "0006"
    db.upgrade(empty_url)  # the roll-up is today's: it reads later revisions' columns too
    assert roll_up(engine, params=SignalParams()) == 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT sum(n) FROM output_rollup")).scalar_one() == 1
    from alembic import command

    command.downgrade(db.alembic_config(empty_url), "0005")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT output_id FROM model_output")).scalar_one() == "o1"


def test_migrations_0007_partitions_outputs_by_month_and_downgrades_to_the_plain_table(empty_url):  # type: ignore[no-untyped-def]
    """On PostgreSQL, outputs already stored move to their month's partition with their ids, the
    link to one still holds, output_id stays unique; the downgrade restores the plain table with
    every output. SQLite keeps its table (issue 17)."""
    from alembic import command

    from triage import store
    from triage.errors import ConflictError
    from triage.models import ModelOutputCreate

    db.upgrade(empty_url, "0006")
    engine = db.get_engine(empty_url)
    postgres = engine.dialect.name == "postgresql"
    long_ago = (
        "CURRENT_TIMESTAMP - INTERVAL '100 days'" if postgres else "datetime('now', '-100 days')"
    )
    with engine.begin() as connection:
        for output_id, received in (("o-old", long_ago), ("o-new", "CURRENT_TIMESTAMP")):
            connection.execute(
                text(
                    "INSERT INTO model_output (output_id, model, content_sha256, received_at) "
                    f"VALUES ('{output_id}', 'summarizer', 'x', {received})"
                )
            )
        connection.execute(
            text(
                "INSERT INTO feedback (source, external_id, text, text_sha256, received_at, "
                "status, attempts) VALUES ('s', '1', 'wrong', 'x', CURRENT_TIMESTAMP, "
                "'processed', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO link (feedback_id, model_output_id, method, confidence, created_at) "
                "VALUES (1, 1, 'explicit', 1.0, CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0007")
    assert db.schema_state(engine)[0] == "0007"
    where = "SELECT output_id, id FROM model_output ORDER BY id"
    with engine.connect() as connection:
        assert [tuple(r) for r in connection.execute(text(where))] == [("o-old", 1), ("o-new", 2)]
        if postgres:
            tables = connection.execute(
                text("SELECT tableoid::regclass::text FROM model_output ORDER BY id")
            ).scalars()
            assert [t.rsplit("_", 2)[0] for t in tables] == ["model_output_live"] * 2
            assert (
                connection.execute(
                    text("SELECT count(*) FROM pg_partition_tree('model_output_live') WHERE isleaf")
                ).scalar_one()
                >= 5
            )  # 100 days back to two months ahead, and the default
            fk = "SELECT confrelid::regclass::text FROM pg_constraint WHERE conname = :name"
            linked = connection.execute(text(fk), {"name": "link_model_output_id_fkey"})
            assert linked.scalar_one() == "model_output_key"
    with pytest.raises(ConflictError) as refused, db.session_scope(engine) as session:
        store.add_model_outputs(session, items=[ModelOutputCreate(output_id="o-old", model="m")])
    assert refused.value.details["conflicts"] == [{"output_id": "o-old", "id": 1}]
    with db.session_scope(engine) as session:
        [added] = store.add_model_outputs(session, items=[
            ModelOutputCreate(output_id="o-3", model="summarizer")])  # fmt: skip
    assert added.id > 2 and not added.duplicate  # a refused claim may have spent an id
    new_id = added.id

    command.downgrade(db.alembic_config(empty_url), "0006")
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(text(where))]
        assert rows == [("o-old", 1), ("o-new", 2), ("o-3", new_id)]
        assert connection.execute(text("SELECT model_output_id FROM link")).scalar_one() == 1
        if postgres:
            kind = "SELECT relkind FROM pg_class WHERE relname = 'model_output'"
            assert connection.execute(text(kind)).scalar_one() == "r"
    insert = (
        "INSERT INTO model_output (output_id, model, content_sha256, received_at) "
        "VALUES (:o, 'summarizer', 'x', CURRENT_TIMESTAMP) RETURNING id"
    )
    with pytest.raises(Exception, match=r"uq_model_output_output_id|UNIQUE"), engine.begin() as c:
        c.execute(text(insert), {"o": "o-3"})
    with engine.begin() as connection:  # the id sequence went on from where it was
        assert connection.execute(text(insert), {"o": "o-4"}).scalar_one() > new_id


def test_migrations_0009_rollups_merged_once_by_the_next_roll_up(empty_url):  # type: ignore[no-untyped-def]
    """Rolled up before 0009, a database keeps its traffic profile after the upgrade, and the
    next roll-up stores the merge of its rollups' sketches even with nothing new to roll up;
    the downgrade drops only that merge (issue 17)."""
    from alembic import command

    from triage.link import SignalParams
    from triage.rollups import load_traffic, roll_up

    db.upgrade(empty_url, "0008")
    engine = db.get_engine(empty_url)
    sketch = {"values": {"confidence": [[500], [1]]}, "missing": {}, "sources": {},
              "oldest": [[], []], "stale": 0}  # fmt: skip
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO output_rollup (day, model, model_version, feature, n, sketch, "
                "updated_at) VALUES ('2026-12-01', 'summarizer', '', '', 1, :sketch, "
                "CURRENT_TIMESTAMP)"
            ),
            {"sketch": json.dumps(sketch)},
        )
        connection.execute(
            text(
                "INSERT INTO rollup_watermark (name, last_output_id, updated_at) "
                "VALUES ('model_output', 1, CURRENT_TIMESTAMP)"
            )
        )
    db.upgrade(empty_url, "0009")
    stored = "SELECT sketch FROM rollup_watermark"
    with engine.connect() as connection:
        assert connection.execute(text(stored)).scalar_one() is None
    with db.session_scope(engine) as session:
        traffic = load_traffic(session, params=SignalParams())
    assert traffic.n == 1 and traffic.values["confidence"].median() == 0.5
    assert roll_up(engine, params=SignalParams()) == 0
    with engine.connect() as connection:
        merged = connection.execute(text(stored)).scalar_one()
    assert (json.loads(merged) if isinstance(merged, str) else merged) == sketch
    command.downgrade(db.alembic_config(empty_url), "0008")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM output_rollup")).scalar_one() == 1
