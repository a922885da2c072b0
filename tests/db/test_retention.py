"""Retention (issue 17): old model outputs linked to no ticket are pruned, by `triage db prune`
and by the worker at most once a day; linked outputs stay as long as their tickets. On SQLite
and PostgreSQL."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import delete, update
from sqlmodel import col, select
from typer.testing import CliRunner

from triage import db, retention, store
from triage.cli import app
from triage.models import (
    Feedback,
    FeedbackCreate,
    Link,
    ModelOutput,
    ModelOutputCreate,
    PipelineRun,
    utcnow,
)
from triage.worker import Worker

runner = CliRunner()
DAY = timedelta(days=1)


def _outputs(engine, **ages: tuple[int | None, int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """One output per name, created and received ``(created_days_ago, received_days_ago)``
    ago (created None: not given); their ids by name."""
    now = utcnow()
    with db.session_scope(engine) as session:
        accepted = store.add_model_outputs(session, items=[
            ModelOutputCreate(output_id=name, model="summarizer", output=f"Output {name}.",
                              created_at=None if created is None else now - created * DAY)
            for name, (created, _) in ages.items()])  # fmt: skip
        for name, (_, received) in ages.items():
            session.execute(
                update(ModelOutput)
                .where(col(ModelOutput.output_id) == name)
                .values(received_at=now - received * DAY)
            )
    return {a.output_id: a.id for a in accepted}


def _ticket(engine, external_id: str, output_id: str | None = None) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        [answer] = store.add_feedback(session, items=[
            FeedbackCreate(source="test", external_id=external_id, text="The summary is wrong.",
                           output_id=output_id)])  # fmt: skip
    return int(answer.id)


def _link(engine, feedback_id: int, output_id: int) -> None:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        session.add(Link(feedback_id=feedback_id, model_output_id=output_id, method="user",
                         confidence=0.8))  # fmt: skip


def _stored(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return set(session.exec(select(ModelOutput.output_id)).all())


def _prune_runs(engine) -> list[dict]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        runs = session.exec(select(PipelineRun).where(col(PipelineRun.kind) == "prune")).all()
        return [run.stats for run in runs]


def test_retention_prune_deletes_old_unlinked_outputs_only(settings, engine):  # type: ignore[no-untyped-def]
    ids = _outputs(
        engine,
        old=(120, 120),
        old_no_created_at=(None, 120),
        old_linked=(120, 120),
        old_named=(120, 120),
        recent=(10, 10),
        backfilled=(200, 5),  # created long ago, arrived last week: linking gets its full period
        just_over=(91, 91),
        just_under=(89, 89),
    )
    ticket = _ticket(engine, "T-1")
    _link(engine, ticket, ids["old_linked"])
    _ticket(engine, "T-2", output_id="old_named")  # its links are not decided yet

    assert retention.count_prunable(engine, retention_days=90) == 3
    result = retention.prune_outputs(engine, retention_days=90)

    assert result.deleted == 3
    assert _stored(engine) == {"old_linked", "old_named", "recent", "backfilled", "just_under"}
    [stats] = _prune_runs(engine)
    assert stats["deleted"] == 3 and stats["retention_days"] == 90
    # Nothing more to do: a second prune deletes nothing.
    assert retention.prune_outputs(engine, retention_days=90).deleted == 0


def test_retention_linked_output_stays_as_long_as_its_ticket(settings, engine):  # type: ignore[no-untyped-def]
    ids = _outputs(engine, seen=(400, 400))
    ticket = _ticket(engine, "T-1")
    _link(engine, ticket, ids["seen"])
    assert retention.prune_outputs(engine, retention_days=90).deleted == 0
    with db.session_scope(engine) as session:
        session.execute(delete(Feedback).where(col(Feedback.id) == ticket))  # links cascade
    assert retention.prune_outputs(engine, retention_days=90).deleted == 1
    assert _stored(engine) == set()


def test_retention_prunes_in_ranges_and_zero_days_keeps_everything(settings, engine):  # type: ignore[no-untyped-def]
    ids = _outputs(engine, **{f"o-{i}": (100, 100) for i in range(11)})
    _link(engine, _ticket(engine, "T-1"), ids["o-4"])
    assert retention.prune_outputs(engine, retention_days=0).deleted == 0
    assert _prune_runs(engine) == []
    # Ranges of 3 rows: 4 ranges, one of which keeps its linked output.
    assert retention.prune_outputs(engine, retention_days=90, chunk=3).deleted == 10
    assert _stored(engine) == {"o-4"}


def test_retention_cli_prune_and_dry_run(settings, engine):  # type: ignore[no-untyped-def]
    _outputs(engine, old=(120, 120), older=(300, 300), recent=(1, 1))
    dry = runner.invoke(app, ["db", "prune", "--dry-run"], catch_exceptions=False)
    assert dry.exit_code == 0
    assert "would delete 2 model outputs linked to no ticket, older than 90 days" in dry.stdout
    assert len(_stored(engine)) == 3

    narrow = runner.invoke(app, ["db", "prune", "--days", "200"], catch_exceptions=False)
    assert narrow.exit_code == 0 and "deleted 1 model outputs" in narrow.stdout
    assert _stored(engine) == {"old", "recent"}

    default = runner.invoke(app, ["db", "prune"], catch_exceptions=False)
    assert default.exit_code == 0 and "deleted 1 model outputs" in default.stdout
    assert _stored(engine) == {"recent"}


class _IdlePipeline:
    """Nothing pending; counts refreshes."""

    def __init__(self) -> None:
        self.refreshes = 0

    def process_pending(self, engine, *, until=None):  # type: ignore[no-untyped-def]
        return SimpleNamespace(processed=0, failed=0)

    def refresh(self, engine) -> None:  # type: ignore[no-untyped-def]
        self.refreshes += 1


def test_retention_worker_prunes_at_most_once_a_day(settings, engine, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    _outputs(engine, first=(100, 100))
    worker = Worker(settings, pipeline=_IdlePipeline())  # type: ignore[arg-type]
    assert worker.tick() == 0
    assert _stored(engine) == set()
    assert "pruned 1 model outputs older than 90 days" in caplog.text

    # More old outputs arrive (a backfill); neither this worker nor a restarted or second one
    # prunes again the same day.
    _outputs(engine, second=(100, 100))
    worker._prune_checked = -float("inf")  # as if an hour had passed
    worker.tick()
    Worker(settings, pipeline=_IdlePipeline()).tick()  # type: ignore[arg-type]
    assert _stored(engine) == {"second"}
    assert len(_prune_runs(engine)) == 1
    assert not retention.prune_due(engine)
    assert retention.prune_due(engine, now=utcnow() + DAY + timedelta(minutes=1))

    # A day later it is due again.
    with db.session_scope(engine) as session:
        session.execute(update(PipelineRun).values(started_at=utcnow() - DAY - DAY))
    worker._prune_checked = -float("inf")
    worker.tick()
    assert _stored(engine) == set()
    assert len(_prune_runs(engine)) == 2


def test_retention_worker_keeps_everything_with_zero_days(settings, engine):  # type: ignore[no-untyped-def]
    _outputs(engine, old=(1000, 1000))
    settings = settings.model_copy(update={"output_retention_days": 0})
    Worker(settings, pipeline=_IdlePipeline()).tick()  # type: ignore[arg-type]
    assert _stored(engine) == {"old"}
    assert _prune_runs(engine) == []
