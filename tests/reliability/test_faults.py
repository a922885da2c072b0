"""Faults: the database restarting under the API, the worker killed, workers racing, bad tickets.

Afterwards nothing is lost and nothing is stored or processed twice.

The PostgreSQL restart test restarts the whole local server, which would break any other test
run using it at the same moment (another developer's, on this shared machine), so it runs only
when ``TRIAGE_TEST_RESTART_POSTGRES=1``; ``.ci/run`` sets it, since CI owns its machine. Within
one pytest run tests are sequential, so the restart cannot hit another test of the same run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections import Counter

import httpx
import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import make_url
from sqlmodel import select

from tests.conftest import auth
from tests.support.reliability import note
from triage import db
from triage.models import Feedback, Scope

POSTGRES_ONLY = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _postgres_cluster(url: str) -> tuple[str, str]:
    """(version, name) of the local Debian cluster serving ``url``'s port."""
    port = str(make_url(url).port or 5432)
    listing = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    raise RuntimeError(f"no local PostgreSQL cluster on port {port}:\n{listing}")


def _restart_postgres(url: str) -> None:
    version, name = _postgres_cluster(url)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )


class RetryingClient:
    """A support tool's push loop: each ticket is retried on connection errors and 5xx, with a
    short backoff, a bounded number of times."""

    def __init__(self, base_url: str, key: str, attempts: int = 120) -> None:
        self.http = httpx.Client(base_url=base_url, headers=auth(key), timeout=30)
        self.attempts = attempts
        self.answers: dict[str, dict] = {}
        self.failures: Counter[str] = Counter()
        self.throttled = 0

    def push(self, item: dict) -> None:
        for _ in range(self.attempts):
            try:
                response = self.http.post("/v1/feedback", json=item)
            except httpx.TransportError as e:
                self.failures[type(e).__name__] += 1
            else:
                if response.status_code == 429:  # a good client waits as told
                    self.throttled += 1
                    time.sleep(float(response.headers["retry-after"]))
                    continue
                if response.status_code < 500:
                    assert response.status_code == 202, response.text
                    self.answers[item["external_id"]] = response.json()
                    return
                self.failures[f"{response.status_code} {response.json()['error']['code']}"] += 1
            time.sleep(0.1)
        raise AssertionError(f"gave up on {item['external_id']}: {dict(self.failures)}")


@POSTGRES_ONLY
def test_faults_postgres_restart_while_client_ingests_stores_each_ticket_once(  # type: ignore[no-untyped-def]
    database_url, live_server, make_key, engine, record_property
):
    if os.environ.get("TRIAGE_TEST_RESTART_POSTGRES") != "1":
        pytest.skip("restarts the shared PostgreSQL server; set TRIAGE_TEST_RESTART_POSTGRES=1")
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's pg_ctlcluster, run as root")
    total = 200
    client = RetryingClient(live_server, make_key(Scope.ingest))
    third = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        try:
            for i in range(total):
                if i == total // 3:
                    third.set()
                client.push({"source": "zendesk", "external_id": f"R-{i}",
                             "text": f"Ticket {i}: the export button is broken."})  # fmt: skip
        except BaseException as e:  # reported by the main thread
            errors.append(e)
            third.set()

    thread = threading.Thread(target=ingest)
    thread.start()
    assert third.wait(120)
    _restart_postgres(database_url)
    thread.join(300)
    assert not thread.is_alive(), "the client did not finish"

    with db.session_scope(engine) as session:
        stored = session.exec(select(Feedback.external_id, Feedback.id)).all()
    retried = sum(client.failures.values())
    note(record_property, fault="PostgreSQL restarted while a client ingests with retries",
         tried=f"1 restart, {total} tickets, {retried} failed attempts retried "
               f"({', '.join(f'{k}×{v}' for k, v in client.failures.items()) or 'none'}); "
               f"{client.throttled} times rate-limited and waited",
         checked="every ticket stored exactly once; ids answered match the rows; "
                 "failures are 503 database_unavailable, never 500")  # fmt: skip
    assert not errors, errors
    assert len(stored) == total
    assert {external_id for external_id, _ in stored} == {f"R-{i}" for i in range(total)}
    assert {e: client.answers[e]["id"] for e, _ in stored} == dict(stored)
    assert not [k for k in client.failures if k.startswith("500")], client.failures
    with db.session_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Feedback)).one() == total


# --- the worker -----------------------------------------------------------------------------------

TOPICS = [
    "The export button on the report screen does nothing when I click it.",
    "Forecast numbers for last month do not match our sales ledger.",
    "Reply drafts for our Spanish customers come out in German.",
    "The summary left out the refund we discussed on the call.",
    "Search results take more than a minute to load on the dashboard.",
]


def _seed_tickets(engine, total: int, *, outputs: int = 50) -> None:  # type: ignore[no-untyped-def]
    """``total`` tickets on a few topics, every fourth naming a logged model output."""
    from triage import store
    from triage.models import FeedbackCreate, ModelOutputCreate

    with db.session_scope(engine) as session:
        store.add_model_outputs(session, items=[
            ModelOutputCreate(output_id=f"o-{i}", model="summarizer", model_version="2.0",
                              output=f"Summary {i} of the report.")
            for i in range(outputs)])  # fmt: skip
        for start in range(0, total, 500):
            store.add_feedback(session, items=[
                FeedbackCreate(source="kill", external_id=f"K-{i}",
                               text=f"{TOPICS[i % len(TOPICS)]} Ticket {i}.",
                               customer_id=f"c{i % 37}",
                               output_id=f"o-{i % outputs}" if i % 4 == 0 else None)
                for i in range(start, min(start + 500, total))])  # fmt: skip


def _worker_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRIAGE_DATABASE_URL": database_url,
        "TRIAGE_EMBEDDING_BACKEND": "fake",
        "TRIAGE_WORKER_BATCH_SIZE": "25",
        "TRIAGE_WORKER_POLL_SECONDS": "0.2",
        "TRIAGE_WORKER_REFRESH_SECONDS": "2",
        **extra,
    }


def _start_worker(env: dict[str, str], log) -> subprocess.Popen:  # type: ignore[no-untyped-def]
    import sys

    return subprocess.Popen([sys.executable, "-m", "triage.cli", "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def _progress(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(tickets no longer pending, pipeline runs recorded)."""
    from triage.models import PipelineRun

    with db.session_scope(engine) as session:
        done = session.exec(
            select(func.count()).select_from(Feedback).where(Feedback.status != "pending")
        ).one()
        runs = session.exec(select(func.count()).select_from(PipelineRun)).one()
    return int(done), int(runs)


def _wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _finish(engine, env: dict[str, str], log, total: int) -> None:  # type: ignore[no-untyped-def]
    """Run one more worker until every ticket is done and a refresh ran after the last one."""
    worker = _start_worker(env, log)
    try:
        _wait_until(lambda: _progress(engine)[0] == total, 600, "all tickets processed")
        runs = _progress(engine)[1]
        # Generous: on two cores shared with other work, start-up plus a refresh of 2,000
        # statements has taken over two minutes.
        _wait_until(lambda: _progress(engine)[1] > runs, 400, "a refresh after the last batch")
    finally:
        worker.kill()
        worker.wait(30)


def _invariants(engine, total: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Exactly-once checks over the whole store; returns the counts for the report."""
    from triage.models import Embedding, Issue, Link, Membership, Unit

    with db.session_scope(engine) as session:
        statuses = Counter(session.exec(select(Feedback.status)).all())
        attempts = Counter(session.exec(select(Feedback.attempts)).all())
        assert statuses == {"processed": total}, statuses
        # A killed batch rolls back, attempts included: 1 everywhere means processed once.
        assert attempts == {1: total}, attempts
        units = session.exec(select(Unit.feedback_id, Unit.position)).all()
        assert len(units) == len(set(units))
        positions: dict[int, list[int]] = {}
        for feedback_id, position in units:
            positions.setdefault(feedback_id, []).append(position)
        assert len(positions) == total
        assert all(sorted(p) == list(range(len(p))) for p in positions.values())
        links = session.exec(select(Link.feedback_id, Link.model_output_id)).all()
        assert len(links) == len(set(links))
        hashes = session.exec(select(Embedding.text_hash, Embedding.model_id)).all()
        assert len(hashes) == len(set(hashes))
        members = session.exec(select(Membership.unit_id, Membership.issue_id)).all()
        assert len(members) == len({unit for unit, _ in members})
        sizes = Counter(issue for _, issue in members)
        issues = session.exec(select(Issue)).all()
        assert {i.id: i.size for i in issues if i.size} == dict(sizes)
        assert {i.id for i in issues} >= set(sizes)
        return {"units": len(units), "links": len(links), "memberships": len(members),
                "issues": len(sizes)}  # fmt: skip


class ForkServer:
    """Starts worker processes fast: ``tests/support/forked_worker.py`` imports and builds
    everything once, then forks a fresh worker per ``start``."""

    def __init__(self, env: dict[str, str], log) -> None:  # type: ignore[no-untyped-def]
        import sys
        from pathlib import Path

        script = Path(__file__).resolve().parents[1] / "support" / "forked_worker.py"
        self.process = subprocess.Popen([sys.executable, str(script)], env=env, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=log)  # fmt: skip
        assert self._ask(None) == "ready"

    def _ask(self, line: str | None) -> str:
        assert self.process.stdin and self.process.stdout
        if line is not None:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        assert answer, "the fork server died; see the worker log"
        return answer

    def start(self) -> int:
        return int(self._ask("start"))

    def kill(self, pid: int) -> int:
        """SIGKILL a worker; its exit status (-9 when the signal killed it)."""
        import signal

        os.kill(pid, signal.SIGKILL)
        return int(self._ask(f"reap {pid}"))

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(60)


def test_faults_worker_killed_ten_times_processes_every_ticket_once(  # type: ignore[no-untyped-def]
    settings, engine, tmp_path, record_property
):
    import random
    import signal

    total, kills, during_refresh = 2000, 10, 3
    _seed_tickets(engine, total)
    env = _worker_env(settings.database_url)
    rng = random.Random(7)
    moments: list[str] = []
    with open(tmp_path / "worker.log", "wb") as log:
        server = ForkServer(env, log)
        try:
            for k in range(kills):
                before = _progress(engine)
                pid = server.start()
                if k < kills - during_refresh:
                    # A random moment after its first commit: inside a batch or between two.
                    _wait_until(lambda b=before: _progress(engine) != b, 300, "a batch")
                    what = "batch"
                else:
                    # Processing over, the worker refreshes the issues: kill it in there.
                    _wait_until(lambda: _progress(engine)[0] == total, 600, "all processed")
                    what = "refresh"
                delay = rng.uniform(0.0, 1.5)
                time.sleep(delay)
                done = _progress(engine)[0]
                assert server.kill(pid) == -signal.SIGKILL
                if what == "batch" and done == total:
                    what = "refresh"  # the queue emptied before the moment came
                moments.append(f"{what} ({done} done, +{delay:.1f}s)")
        finally:
            server.close()
        # The last restart is the real command.
        _finish(engine, env, log, total)
    note(record_property, fault="worker SIGKILLed at random moments, restarted each time",
         tried=f"{kills} kills over {total} tickets: {'; '.join(moments)}",
         checked="every ticket processed once (attempts 1); no duplicate unit, link, embedding "
                 "or membership; issue sizes = memberships; a refresh ran at the end")  # fmt: skip
    _invariants(engine, total)


@POSTGRES_ONLY
def test_faults_two_workers_on_postgres_never_process_a_ticket_twice(  # type: ignore[no-untyped-def]
    database_url, settings, engine, tmp_path, record_property
):
    import re

    total = 1000
    url = make_url(settings.database_url)
    names = ("worker-a", "worker-b")
    workers, logs = [], []
    try:
        for name in names:
            # Each names itself to PostgreSQL, so the test can see both connected before work
            # arrives: then both claim from the same queue at the same time.
            env = _worker_env(url.update_query_dict({"application_name": name})
                              .render_as_string(hide_password=False))  # fmt: skip
            logs.append(open(tmp_path / f"{name}.log", "wb"))  # noqa: SIM115
            workers.append(_start_worker(env, logs[-1]))

        def connected() -> set[str]:
            with db.session_scope(engine) as session:
                rows = session.execute(text("SELECT application_name FROM pg_stat_activity"))
                return set(rows.scalars()) & set(names)

        def processed_per_worker() -> dict[str, int]:
            return {
                name: sum(int(n) for n in re.findall(r"processed (\d+), failed",
                          (tmp_path / f"{name}.log").read_text(errors="replace")))
                for name in names
            }  # fmt: skip

        _wait_until(lambda: connected() == set(names), 180, "both workers connected")
        _seed_tickets(engine, total)
        _wait_until(lambda: _progress(engine)[0] == total, 600, "all tickets processed")
        # Each worker logs its count once its round (processing, then a refresh) is over.
        _wait_until(lambda: sum(processed_per_worker().values()) >= total, 300, "the logs")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(30)
        for log in logs:
            log.close()
    output = {name: (tmp_path / f"{name}.log").read_text(errors="replace") for name in names}
    done = processed_per_worker()
    note(record_property, fault="two workers on one PostgreSQL queue at once",
         tried=f"{total} tickets; processed per worker: {done}",
         checked="each ticket processed once (attempts 1, per-worker counts add up to the total), "
                 "no worker round failed")  # fmt: skip
    with db.session_scope(engine) as session:
        attempts = Counter(session.exec(select(Feedback.attempts)).all())
    assert attempts == {1: total}, attempts
    assert sum(done.values()) == total, done
    assert all("worker round failed" not in text for text in output.values())


# --- a ticket that fails a stage ------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_preprocessor():  # type: ignore[no-untyped-def]
    """One real Preprocessor (spaCy and presidio load in seconds) for every test here."""
    from triage.preprocess import Preprocessor

    return Preprocessor()


class Exploding:
    """The real preprocessor, except that it raises on any batch holding 'KABOOM' while armed:
    a stand-in for a stage crashing on one ticket."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.armed = inner, True

    def process(self, texts):  # type: ignore[no-untyped-def]
        if self.armed and any("KABOOM" in text for text in texts):
            raise RuntimeError("stage exploded on purpose")
        return self.inner.process(texts)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.inner, name)


def test_faults_failing_ticket_is_marked_visible_and_retried(  # type: ignore[no-untyped-def]
    client, make_key, engine, monkeypatch, shared_preprocessor, record_property
):
    import json as jsonlib

    from typer.testing import CliRunner

    from triage.cli import app
    from triage.preprocess import Preprocessor

    exploding = Exploding(shared_preprocessor)
    monkeypatch.setattr(Preprocessor, "from_settings", classmethod(lambda cls, s: exploding))
    bad = {"F-emoji-1": "😀😀😀", "F-emoji-2": "🔥🔥 🙈", "F-url-1": "https://example.com/r?id=3",
           "F-url-2": "  http://intranet.example.org/tickets/42  ",
           "F-crash": "KABOOM the export button crashes the whole page."}  # fmt: skip
    good = {f"F-ok-{i}": f"{TOPICS[i % 2]} Ticket {i}." for i in range(8)}
    # The bad tickets sit in the middle of one batch with the good ones.
    ordered = [*list(good.items())[:4], *bad.items(), *list(good.items())[4:]]
    items = [{"source": "t", "external_id": k, "text": v} for k, v in ordered]
    headers = auth(make_key(Scope.admin))
    assert client.post("/v1/feedback", json={"items": items}, headers=headers).status_code == 202

    runner = CliRunner()
    first = runner.invoke(app, ["run"], catch_exceptions=False)
    failed = client.get("/v1/feedback?status=failed&limit=100", headers=headers).json()
    exported = [jsonlib.loads(line) for line in
                runner.invoke(app, ["export", "feedback"]).stdout.splitlines()]  # fmt: skip
    exploding.armed = False  # the stage is fixed; a retry now gets the crashing ticket through
    retried = runner.invoke(app, ["run", "--retry-failed"], catch_exceptions=False)
    with db.session_scope(engine) as session:
        rows = {f.external_id: f for f in session.exec(select(Feedback)).all()}

    note(record_property, fault="tickets that fail a stage (emoji only, URL only, a crash)",
         tried=f"{len(bad)} bad among {len(items)} in one batch",
         checked="marked failed with the error; in GET ?status=failed and the export; the rest "
                 "of the batch processed; --retry-failed retries only them")  # fmt: skip
    assert first.exit_code == 0 and retried.exit_code == 0
    assert {f["external_id"] for f in failed["items"]} == set(bad)
    errors = {f["external_id"]: f["last_error"] for f in failed["items"]}
    assert errors["F-crash"] == "preprocess failed: RuntimeError: stage exploded on purpose"
    assert all(errors[k].startswith("Nothing to triage") for k in bad if k != "F-crash")
    by_id = {row["external_id"]: row for row in exported}
    assert {k for k, row in by_id.items() if row["status"] == "failed"} == set(bad)
    assert all(by_id[k]["last_error"] == errors[k] for k in bad)
    # After the retry: the crash is processed, the hopeless ones failed again, the good ones
    # were never touched a second time.
    assert rows["F-crash"].status == "processed" and rows["F-crash"].attempts == 2
    assert all(rows[k].status == "failed" and rows[k].attempts == 2 for k in bad if k != "F-crash")
    assert all(rows[k].status == "processed" and rows[k].attempts == 1 for k in good)
