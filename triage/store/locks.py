"""The refresh lock: one issue refresh at a time across processes and machines, taken without
waiting, so a worker that finds it taken skips its refresh and goes on processing tickets.

Unlike the other store functions this takes the engine, not a session: the lock is held for the
whole refresh, which runs its own transactions, so it lives on a connection of its own outside any
transaction (no transaction stays open for minutes).

``lock_issues`` (a transaction-level lock inside the refresh's transaction) still serialises every
writer of issues, ``triage run`` included, which waits for it instead of skipping.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text

from triage.db import sqlite_file

logger = logging.getLogger("triage.store")

# lock_issues takes 7273 per transaction; this one is per connection. They must differ: the same
# key held here would make the refresh's own lock_issues wait for this connection forever.
REFRESH_LOCK_KEY = 7274


@contextmanager
def refresh_lock(engine: Engine) -> Iterator[bool]:
    """Yields True while this caller holds the refresh lock, False when another process (or
    thread) holds it; it is released when the block ends.

    PostgreSQL: a session-level ``pg_try_advisory_lock`` on an autocommit connection; a holder
    that dies loses it with its connection. SQLite: an exclusive ``flock`` on a file beside the
    database (``<database>.refresh-lock``), which the kernel releases when a holder dies; an
    in-memory database has one process, so the lock is always free.
    """
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine) as held:
            yield held
        return
    path = sqlite_file(str(engine.url))
    if path is None:
        yield True
        return
    with _file_lock(path.with_name(path.name + ".refresh-lock")) as held:
        yield held


@contextmanager
def _pg_lock(engine: Engine) -> Iterator[bool]:
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        held = bool(
            connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": REFRESH_LOCK_KEY}
            ).scalar()
        )
        try:
            yield held
        finally:
            if held:
                _pg_unlock(connection)
    finally:
        connection.close()


def _pg_unlock(connection: Connection) -> None:
    try:
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": REFRESH_LOCK_KEY})
    except Exception:
        # The server went away (the lock with it) or the connection broke: never hand a
        # connection that may still hold the lock back to the pool.
        logger.warning("could not release the refresh lock; dropping its connection")
        connection.invalidate()


@contextmanager
def _file_lock(path: os.PathLike[str]) -> Iterator[bool]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        # A folder this process cannot write to: refresh as before the lock existed (SQLite's
        # write lock still keeps two refreshes from interleaving; the second waits).
        logger.warning("no refresh lock file at %s (%s); refreshing without it", path, e)
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
