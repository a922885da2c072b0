"""Issue 14: a single ``POST /v1/feedback`` at 200 requests/s had a PostgreSQL p99 far above
SQLite's. Each round trip to the server waits for the CPU on a busy host, so a new ticket is now
one statement, in autocommit on PostgreSQL (one round trip, instead of BEGIN, the insert, a
read-back and COMMIT); a retry reads the stored row back. These pin the statements, not a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.conftest import auth
from triage.db import is_sqlite
from triage.models import Scope


@contextmanager
def statements(engine: Any) -> Iterator[list[tuple[str, bool]]]:
    """Each statement the engine runs: (its first word, whether the connection autocommits)."""
    seen: list[tuple[str, bool]] = []

    def record(conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        driver = conn.connection.driver_connection
        seen.append((statement.split()[0].upper(), bool(getattr(driver, "autocommit", False))))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_api_feedback_new_ticket_is_one_statement(client, make_key, database_url):  # type: ignore[no-untyped-def]
    engine, headers = client.app.state.engine, auth(make_key(Scope.ingest))
    body = {"source": "zendesk", "external_id": "T-1", "text": "The export button is broken."}
    client.post("/v1/feedback", json=body, headers=headers)  # the key is looked up and cached

    with statements(engine) as new:
        first = client.post("/v1/feedback", json={**body, "external_id": "T-2"}, headers=headers)
    with statements(engine) as retry:
        again = client.post("/v1/feedback", json={**body, "external_id": "T-2"}, headers=headers)
    with statements(engine) as read:
        listed = client.get("/v1/feedback", headers=auth(make_key(Scope.read)))

    assert first.status_code == 202 and first.json()["duplicate"] is False
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.json()["duplicate"] is True
    assert listed.json()["total"] == 2
    postgres = not is_sqlite(database_url)
    # SQLite's BEGIN IMMEDIATE is a statement of its own; PostgreSQL needs no BEGIN at all.
    begin = [] if postgres else [("BEGIN", False)]
    assert new == [*begin, ("INSERT", postgres)]
    assert retry == [*begin, ("INSERT", postgres), ("SELECT", postgres)]
    # The connection went back to the pool in transactions again: other routes are unchanged.
    assert read and not any(autocommit for _, autocommit in read)
