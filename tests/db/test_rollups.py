"""Traffic rollups on a database (issue 17): every output rolled up once, none lost to an insert
in flight, pruned outputs still counted; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
from sqlalchemy import update
from sqlmodel import col, select

from triage import db, retention, rollups, store
from triage.link import SignalParams, TrafficProfile
from triage.link.rollup import Sketch
from triage.models import ModelOutput, ModelOutputCreate, OutputRollup, RollupWatermark, utcnow
from triage.pipeline.links import output_record

PARAMS = SignalParams()


def _add(engine, names: list[str], **fields) -> list[int]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        accepted = store.add_model_outputs(
            session, items=[_output(name, **fields) for name in names]
        )
    return [a.id for a in accepted]


def _output(name: str, **fields) -> ModelOutputCreate:  # type: ignore[no-untyped-def]
    created = fields.pop("created_at", utcnow() - timedelta(days=2))
    return ModelOutputCreate.model_validate({
        "output_id": name, "model": "summarizer", "model_version": "2.3.0",
        "feature": "summary", "output": f"Summary {name}.", "confidence": 0.7,
        "latency_ms": 850.0, "created_at": created.isoformat(),
        "metadata": {"sources": [{"id": "transcript", "as_of": (created - timedelta(days=1))
                                  .date().isoformat()}], "eval_score": 0.8},
        **fields,
    })  # fmt: skip


def _traffic(engine) -> TrafficProfile:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return rollups.load_traffic(session, params=PARAMS)


def _rolled_up_count(engine) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return sum(row.n for row in store.output_rollups(session))


def test_rollups_roll_up_each_output_once(engine):  # type: ignore[no-untyped-def]
    _add(engine, [f"a{i}" for i in range(7)])
    assert rollups.roll_up(engine, params=PARAMS, batch=3) == 7  # three id ranges
    assert rollups.roll_up(engine, params=PARAMS) == 0  # idempotent
    _add(engine, ["b0", "b1"], confidence=0.2, created_at=utcnow() - timedelta(days=1))
    assert rollups.roll_up(engine, params=PARAMS) == 2
    assert _rolled_up_count(engine) == 9
    with db.session_scope(engine) as session:
        rows = store.output_rollups(session)
        assert len(rows) == 2  # two days, one model, version and feature
        assert all(row.model_version == "2.3.0" and row.feature == "summary" for row in rows)
        every = [output_record(o) for o in store.all_model_outputs(session)]
    traffic, exact = _traffic(engine), TrafficProfile(every, PARAMS)
    assert traffic.n == 9 and traffic.group_counts == exact.group_counts
    assert traffic.values["confidence"].median() == exact.values["confidence"].median()


def _rows_merged(engine) -> dict:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        rows = [Sketch.from_json(r.sketch) for r in store.output_rollups(session)]
    return Sketch.merged(rows).to_json()


def test_rollups_the_merge_kept_with_the_watermark_is_the_rows_merge(engine):  # type: ignore[no-untyped-def]
    """The merge of every rollup row's sketch a refresh reads (0009) is exactly the rows' merge
    after every roll-up, so the profile, and every p-value, is the one from merging the rows."""
    _add(engine, [f"a{i}" for i in range(5)], confidence=0.4)
    rollups.roll_up(engine, params=PARAMS, batch=2)
    _add(engine, ["b0", "b1"], confidence=0.9, latency_ms=120.0,
         created_at=utcnow() - timedelta(days=1))  # fmt: skip
    rollups.roll_up(engine, params=PARAMS)
    with db.session_scope(engine) as session:
        assert store.rollup_sketch(session) == _rows_merged(engine)
    kept = _traffic(engine)
    with db.session_scope(engine) as session:  # as rolled up before 0009: the rows are merged
        session.execute(update(RollupWatermark).values(sketch=None))
    merged = _traffic(engine)
    for name in ("n", "group_counts", "period_counts", "period_totals", "version_counts",
                 "source_counts", "missing_counts", "typical_ages",
                 "rolled_up_freshness"):  # fmt: skip
        assert getattr(kept, name) == getattr(merged, name), name
    linked = np.array([0.4, 0.9, 0.95])
    for name in ("confidence", "latency_ms"):
        assert kept.values[name].median() == merged.values[name].median()
        assert kept.values[name].mann_whitney(linked) == merged.values[name].mann_whitney(linked)
    assert rollups.roll_up(engine, params=PARAMS) == 0  # nothing new: stores the merge anyway
    with db.session_scope(engine) as session:
        assert store.rollup_sketch(session) == _rows_merged(engine)


def test_rollups_profile_reads_outputs_not_rolled_up_yet(engine):  # type: ignore[no-untyped-def]
    _add(engine, ["a0", "a1"])
    rollups.roll_up(engine, params=PARAMS)
    _add(engine, ["b0"], confidence=0.1)
    traffic = _traffic(engine)  # a caller that skipped roll_up still sees every output
    assert traffic.n == 3 and traffic.values["confidence"].n == 3
    assert _rolled_up_count(engine) == 2


def test_rollups_an_insert_in_flight_is_not_lost(engine):  # type: ignore[no-untyped-def]
    """An insert that took its id before a roll-up and commits after it is rolled up, by that
    roll-up (which waits for it) or the next: never skipped by the watermark."""
    _add(engine, ["a0"])
    rollups.roll_up(engine, params=PARAMS)
    in_flight = db.session_scope(engine)
    session = in_flight.__enter__()
    store.add_model_outputs(session, items=[_output("slow")])
    session.flush()
    if engine.dialect.name == "postgresql":
        _add(engine, ["fast"])  # a higher id, committed first
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(rollups.roll_up(engine, params=PARAMS)))
    worker.start()
    worker.join(timeout=0.5)  # the roll-up waits for the insert, or rolls up without it
    in_flight.__exit__(None, None, None)  # commits
    worker.join()
    rollups.roll_up(engine, params=PARAMS)
    with db.session_scope(engine) as session:
        stored = len(store.all_model_outputs(session))
        watermark = store.rollup_watermark(session)
        highest = session.exec(select(ModelOutput.id).order_by(col(ModelOutput.id).desc())).first()
    assert _rolled_up_count(engine) == stored
    assert watermark == highest


def test_rollups_a_roll_up_held_up_by_an_insert_is_skipped_not_stuck(engine):  # type: ignore[no-untyped-def]
    """PostgreSQL: a roll-up that waits too long for an insert in flight gives up (new inserts
    queue behind it); the profile still counts what is not rolled up, the next roll-up does."""
    if engine.dialect.name != "postgresql":
        return  # SQLite's roll-up never waits for an insert: it reads the committed rows
    in_flight = db.session_scope(engine)
    session = in_flight.__enter__()
    store.add_model_outputs(session, items=[_output("slow")])
    assert rollups.roll_up(engine, params=PARAMS, lock_wait=0.2) == 0
    in_flight.__exit__(None, None, None)
    assert _traffic(engine).n == 1
    assert rollups.roll_up(engine, params=PARAMS) == 1


def _age(engine, ids: list[int], days: int) -> None:  # type: ignore[no-untyped-def]
    then = utcnow() - timedelta(days=days)
    with db.session_scope(engine) as session:
        session.execute(
            update(ModelOutput)
            .where(col(ModelOutput.id).in_(ids))
            .values(received_at=then, created_at=then)
        )


def test_rollups_pruned_outputs_still_count_in_traffic(engine):  # type: ignore[no-untyped-def]
    old = _add(engine, [f"old{i}" for i in range(5)], confidence=0.3)
    _age(engine, old, 200)
    _add(engine, ["new"])
    # A prune rolls up first: nothing is deleted that the rollups do not hold.
    result = retention.prune_outputs(engine, retention_days=90, signals=PARAMS)
    assert result.deleted == 5
    with db.session_scope(engine) as session:
        assert [o.output_id for o in store.all_model_outputs(session)] == ["new"]
    traffic = _traffic(engine)
    assert traffic.n == 6 and traffic.values["confidence"].n == 6
    assert traffic.values["confidence"].median() == 0.3


def test_rollups_prune_never_deletes_past_the_watermark(engine, monkeypatch):  # type: ignore[no-untyped-def]
    old = _add(engine, ["o1", "o2"])
    _age(engine, old, 200)
    monkeypatch.setattr(retention, "roll_up", lambda engine, params: 0)  # a roll-up that lags
    assert retention.prune_outputs(engine, retention_days=90).deleted == 0
    monkeypatch.undo()
    assert retention.prune_outputs(engine, retention_days=90).deleted == 2
    assert _rolled_up_count(engine) == 2


def test_rollups_a_reused_id_after_pruning_the_newest_output_is_rolled_up(engine):  # type: ignore[no-untyped-def]
    """SQLite gives a new row the highest id plus one: after the newest outputs are pruned an
    id can come back, and must not be taken for rolled up."""
    old = _add(engine, ["o1", "o2", "o3"])
    _age(engine, old, 200)
    assert retention.prune_outputs(engine, retention_days=90, signals=PARAMS).deleted == 3
    _add(engine, ["again"])
    assert rollups.roll_up(engine, params=PARAMS) == 1
    assert _traffic(engine).n == 4


def test_rollups_rows_key_a_missing_version_and_feature_as_empty(engine):  # type: ignore[no-untyped-def]
    _add(engine, ["v"], model_version=None, feature=None)
    rollups.roll_up(engine, params=PARAMS)
    with db.session_scope(engine) as session:
        [row] = session.exec(select(OutputRollup)).all()
        assert (row.model_version, row.feature, row.n) == ("", "", 1)
    traffic = _traffic(engine)
    assert traffic.group_counts["model_version"] == {None: 1}
    assert traffic.version_counts == {("summarizer", None): 1}


def test_rollups_a_refresh_after_pruning_gives_the_same_evidence(engine, settings):  # type: ignore[no-untyped-def]
    """Pruned outputs live on in the rollups: the issues' evidence (traffic shares, medians,
    stale shares) does not change when unlinked outputs are deleted."""
    import json
    from pathlib import Path

    from triage.models import FeedbackCreate, Issue
    from triage.pipeline import Pipeline

    fixtures = Path(__file__).resolve().parents[2] / "fixtures"
    outputs = [json.loads(line) for line in (fixtures / "model_outputs.jsonl").open()]
    tickets = [json.loads(line) for line in (fixtures / "labelled.jsonl").open()][:120]
    with db.session_scope(engine) as session:
        store.add_model_outputs(
            session, items=[ModelOutputCreate.model_validate(o) for o in outputs]
        )
        store.add_feedback(session, items=[
            FeedbackCreate.model_validate({k: v for k, v in t.items()
                                           if k not in ("label", "split", "product")})
            for t in tickets
        ])  # fmt: skip
    pipeline = Pipeline(settings)
    _, first = pipeline.run(engine)
    assert first.rolled_up == len(outputs)

    def evidence() -> dict[int, tuple[list, list]]:
        with db.session_scope(engine) as session:
            issues = session.exec(select(Issue)).all()
            return {i.id: (i.evidence, i.model_versions) for i in issues}  # type: ignore[misc]

    before = evidence()
    assert any("traffic" in str(e) for e, _ in before.values())
    with db.session_scope(engine) as session:  # arrived long ago, so old by both clocks
        session.execute(update(ModelOutput).values(received_at=utcnow() - timedelta(days=400)))
    pruned = retention.prune_outputs(engine, retention_days=30, signals=PARAMS)
    assert pruned.deleted > len(outputs) // 2
    second = pipeline.refresh(engine)
    assert second.rolled_up == 0
    assert evidence() == before


def test_rollups_linking_finds_a_trace_id_through_its_index(engine):  # type: ignore[no-untyped-def]
    """Linking a ticket that names a trace id looks it up by an index (0006), not by reading
    every output's metadata."""
    from sqlalchemy import text

    from triage.models import TRACE_ID_PATH

    trace_id = col(ModelOutput.meta)[TRACE_ID_PATH].as_string()
    statement = select(ModelOutput.id).where(trace_id.in_(["0" * 32]))
    query = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if postgres:
            connection.execute(text("SET enable_seqscan = off"))  # an empty table is no test
        plan = connection.execute(text(("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + query))
        found = " ".join(str(row) for row in plan)
    if postgres:  # partitioned (0007): each partition's copy of the index, no partition read whole
        assert "Seq Scan" not in found and "_varchar_idx" in found
    else:
        assert "ix_model_output_trace_id" in found
