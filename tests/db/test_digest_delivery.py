"""Issue 14, "The scheduled digest never runs": each delivery signed as the README's receiver
example (executed as written) checks it, with an idempotency key, marked delivered only after a
2xx, at least once across a SIGKILLed worker, and the webhook URL's path never in a log."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import delete
from typer.testing import CliRunner

from triage import db, digest, store
from triage.cli import app
from triage.config import Settings, get_settings
from triage.digest.deliver import DELIVERY_HEADER, SIGNATURE_HEADER, delivery_id, sign
from triage.errors import DigestDeliveryError
from triage.models import Digest
from triage.worker import Worker

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-test-0123456789abcdef"
SECRET_PATH = "/T0/secret-path"
SECRET_QUERY = "token=query-secret"
TRIAGE = Path(sys.executable).with_name("triage")  # .venv/bin/triage
# Bounds, not expectations: a worker process imports spaCy and presidio first, which has taken
# 20 s on two busy cores.
START_BOUND = 300.0


@pytest.fixture
def readme(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The README's receiver example, executed as written: its ``verify`` and ``handle``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if SIGNATURE_HEADER in b]
    assert len(blocks) == 1, "the README's Digest webhook section has one receiver example"
    assert "hmac.compare_digest" in blocks[0] and "5 * 60" in blocks[0]
    monkeypatch.setenv("TRIAGE_DIGEST_WEBHOOK_SECRET", SECRET)
    namespace: dict[str, Any] = {"__name__": "readme_receiver"}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    return namespace


@dataclass
class Post:
    path: str
    headers: Message
    body: bytes
    verified: bool  # by the README's verify, when it arrived
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A webhook receiver on loopback: answers ``statuses`` in turn, then 200."""

    url: str = ""
    posts: list[Post] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    on_post: Callable[[], None] | None = None


@pytest.fixture
def receiver(readme: dict[str, Any]) -> Iterator[Receiver]:
    found = Receiver()
    verify = readme["verify"]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify(SECRET.encode(), self.headers.get(SIGNATURE_HEADER, ""), body)
            if found.on_post is not None:
                found.on_post()
            found.posts.append(Post(self.path, self.headers, body, ok, json.loads(body)))
            self.send_response(found.statuses.pop(0) if found.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_port}{SECRET_PATH}?{SECRET_QUERY}"
    yield found
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def clean_engine(engine):  # type: ignore[no-untyped-def]
    # conftest's TRUNCATE list predates the digest table (see tests/db/test_digest.py).
    with db.session_scope(engine) as session:
        session.execute(delete(Digest))
    return engine


def scheduled(settings: Settings, receiver: Receiver, **update: Any) -> Settings:
    # Due every Monday 00:00, so last week's digest is always overdue, whenever the test runs.
    return settings.model_copy(
        update={
            "digest_webhook_url": receiver.url,
            "digest_webhook_secret": SecretStr(SECRET),
            "digest_weekday": 0,
            "digest_hour": 0,
            "digest_webhook_attempts": 1,
            "digest_webhook_backoff_seconds": 0.0,
            "digest_retry_minutes": 0,
            **update,
        }
    )


def stored(engine, week: str) -> Digest | None:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return store.get_digest(session, week=week, fmt="html")


def assert_signed_and_keyed(post: Post, week: str) -> str:
    """The post's delivery id, after checking its signature and that header and payload agree."""
    assert post.verified, "the README's verify rejected the signature"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", post.headers[SIGNATURE_HEADER])
    key = post.payload["delivery_id"]
    assert post.headers[DELIVERY_HEADER] == key
    assert re.fullmatch(rf"{week}-[0-9a-f]{{16}}", key)
    return key


# --- signing -------------------------------------------------------------------------------------


def test_digest_delivery_signs_the_exact_body_as_the_readme_checks(readme):  # type: ignore[no-untyped-def]
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    payload = {"delivery_id": "2026-W47-0123456789abcdef", "text": "Grüße, \u2028 ok", "n": 1.5}
    digest.deliver_webhook(
        "https://hooks.example/T0/secret", payload, secret=SECRET,
        delivery=payload["delivery_id"], client=client,
    )  # fmt: skip
    request = sent[0]
    body, header = request.content, request.headers[SIGNATURE_HEADER]
    assert json.loads(body) == payload and request.headers["content-type"] == "application/json"
    assert request.headers[DELIVERY_HEADER] == payload["delivery_id"]
    verify, key = readme["verify"], SECRET.encode()
    assert verify(key, header, body)
    assert not verify(key, header, body.replace(b"1.5", b"2.5"))  # tampered
    assert not verify(b"another-secret-0123456789", header, body)
    assert not verify(key, "t=abc,v1=00", body) and not verify(key, "", body)
    assert not verify(key, header.replace("v1=", "v1=\u00e9"), body)  # non-ASCII: no TypeError
    stale = int(time.time()) - 6 * 60  # a capture replayed six minutes later
    assert not verify(key, sign(SECRET, stale, body), body)
    assert verify(key, sign(SECRET, int(time.time()) - 60, body), body)
    status = readme["handle"]
    assert status({SIGNATURE_HEADER: header}, body) == 200
    assert status({SIGNATURE_HEADER: header}, body + b" ") == 401


def test_digest_delivery_id_is_stable_per_stored_digest():
    made = datetime(2026, 11, 30, 8, tzinfo=UTC)
    first, again, regenerated = (
        Digest(id=7, week="2026-W48", format="html", content=content, generated_at=when)
        for content, when in [("", made), ("x", made), ("", made + timedelta(hours=1))]
    )
    assert delivery_id(first) == delivery_id(again) and delivery_id(first).startswith("2026-W48-")
    assert delivery_id(regenerated) != delivery_id(first)


def test_digest_delivery_never_names_the_webhook_path_in_logs_or_errors(caplog, receiver):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    receiver.statuses += [500, 503]
    failures = []
    with pytest.raises(DigestDeliveryError) as error:
        digest.deliver_webhook(receiver.url, {}, secret=SECRET, delivery="d", attempts=2,
                               backoff=0)  # fmt: skip
    failures.append(error.value)
    assert len(receiver.posts) == 2

    def quoting(exception: type[Exception]) -> httpx.Client:
        # Errors whose messages quote the URL, as some of httpx's and its transports' do.
        def handler(request: httpx.Request) -> httpx.Response:
            raise exception(f"cannot use {request.url}")

        return httpx.Client(transport=httpx.MockTransport(handler))

    for client in (quoting(httpx.ConnectError), quoting(RuntimeError), None):
        # None: a URL httpx refuses before any request (InvalidURL is no HTTPError).
        url = f"http://127.0.0.1:{'abc' if client is None else 80}{SECRET_PATH}?{SECRET_QUERY}"
        with pytest.raises(DigestDeliveryError) as error:
            digest.deliver_webhook(url, {}, secret=SECRET, delivery="d", attempts=1,
                                   client=client)  # fmt: skip
        failures.append(error.value)
    shown = [caplog.text] + ["".join(traceback.format_exception(e)) for e in failures]
    assert "HTTP Request: POST http://127.0.0.1/…" in caplog.text  # httpx's line, shortened
    assert "cannot use http://127.0.0.1…" in shown[2] and "cannot use" in shown[3]
    for text in shown:
        assert "secret-path" not in text and "query-secret" not in text


# --- the schedule in a worker --------------------------------------------------------------------


def test_digest_delivery_is_marked_only_after_a_2xx(clean_engine, settings, receiver):  # type: ignore[no-untyped-def]
    """A receiver answering 500 then 200: delivered on the retry, and marked only after it."""
    week = digest.last_complete_week()
    marked_while_posting: list[bool] = []
    receiver.on_post = lambda: marked_while_posting.append(
        stored(clean_engine, week).delivered_at is not None  # type: ignore[union-attr]
    )
    receiver.statuses += [500]
    worker = Worker(scheduled(settings, receiver, digest_webhook_attempts=2))
    assert worker.tick() == 0
    assert marked_while_posting == [False, False]
    keys = {assert_signed_and_keyed(post, week) for post in receiver.posts}
    assert len(receiver.posts) == 2 and len(keys) == 1  # the retry is recognisably the same
    assert stored(clean_engine, week).delivered_at is not None  # type: ignore[union-attr]
    for again in (worker, Worker(scheduled(settings, receiver))):
        again.tick()
    assert len(receiver.posts) == 2


def test_digest_delivery_refuses_to_post_unsigned(clean_engine, settings, receiver, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    unsigned = scheduled(settings, receiver, digest_webhook_secret=None)
    worker = Worker(unsigned)
    for _ in range(3):
        worker.tick()
    week = digest.last_complete_week()
    assert receiver.posts == [] and stored(clean_engine, week).delivered_at is None  # type: ignore[union-attr]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "triage.digest"]
    assert len(errors) == 1  # once per weekly slot, not once per round
    assert "set TRIAGE_DIGEST_WEBHOOK_SECRET" in errors[0].getMessage()
    # Restarted with the secret, the worker sends the overdue digest.
    Worker(scheduled(settings, receiver)).tick()
    assert len(receiver.posts) == 1 and assert_signed_and_keyed(receiver.posts[0], week)


def test_digest_delivery_claim_of_a_dead_worker_runs_out(clean_engine, settings):  # type: ignore[no-untyped-def]
    now = datetime(2026, 11, 30, 9, tzinfo=UTC)
    made = digest.generate(clean_engine, week="2026-W47", fmt="html", settings=settings, now=now)

    def claim(token: str, at: datetime) -> bool:
        with db.session_scope(clean_engine, write_lock=True) as session:
            return store.claim_digest_delivery(session, digest_id=made.id, claim=token, at=at,
                                               until=at + timedelta(minutes=2))  # fmt: skip

    def release(token: str, error: str | None = None) -> None:
        with db.session_scope(clean_engine, write_lock=True) as session:
            store.release_digest_delivery(session, digest_id=made.id, claim=token, at=now,
                                          error=error)  # fmt: skip

    assert claim("dead", now)
    assert not claim("other", now + timedelta(minutes=1))  # the first worker may still send
    assert claim("other", now + timedelta(minutes=3))  # it did not finish in time: it died
    release("dead", error="HTTP 500")  # a late failure of the first changes nothing
    assert stored(clean_engine, "2026-W47").summary["delivery"]["claim"] == "other"  # type: ignore[union-attr]
    release("other")
    delivered = stored(clean_engine, "2026-W47")
    assert delivered.delivered_at is not None and "delivery" not in delivered.summary  # type: ignore[union-attr]
    assert not claim("late", now + timedelta(days=1))


# --- a real `triage worker` process --------------------------------------------------------------

LINES = 6


@pytest.fixture
def processed_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite file with a few fixture tickets written last week, ingested and processed
    through the CLI, as a user would before starting the worker."""
    url = f"sqlite:///{tmp_path / 'triage.db'}"
    db.upgrade(url)
    week_start, _ = digest.parse_week(digest.last_complete_week())
    tickets = tmp_path / "tickets.jsonl"
    with (ROOT / "fixtures" / "labelled.jsonl").open(encoding="utf-8") as lines:
        rows = [json.loads(next(lines)) for _ in range(LINES)]
    with tickets.open("w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            for extra in ("label", "split", "product", "output_id"):
                row.pop(extra, None)
            row["created_at"] = (week_start + timedelta(days=2, hours=i)).isoformat()
            out.write(json.dumps(row) + "\n")
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    monkeypatch.setenv("TRIAGE_EMBEDDING_BACKEND", "fake")
    get_settings.cache_clear()
    try:
        for command in (["ingest", "feedback", str(tickets)], ["run"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
        db.get_engine(url).dispose()
    return url


def worker_env(url: str, receiver: Receiver, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    return {
        **env,
        "TRIAGE_DATABASE_URL": url,
        "TRIAGE_EMBEDDING_BACKEND": "fake",
        "TRIAGE_WORKER_POLL_SECONDS": "0.2",
        "TRIAGE_DIGEST_WEBHOOK_URL": receiver.url,
        "TRIAGE_DIGEST_WEBHOOK_SECRET": SECRET,
        "TRIAGE_DIGEST_HOUR": "0",  # Monday 00:00: last week's digest is overdue
        "TRIAGE_DIGEST_RETRY_MINUTES": "0",
        **extra,
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    assert TRIAGE.exists(), f"{TRIAGE} is missing; pip install -e . in the virtualenv"
    with log.open("ab") as out:
        # cwd: a .env file in the repository must not configure the worker under test.
        return subprocess.Popen([str(TRIAGE), "worker"], env=env, cwd=log.parent, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path,
             what: str, timeout: float = START_BOUND) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def stop(process: subprocess.Popen[bytes], log: Path | None = None) -> int:
    """Ctrl-C, as a user stops ``triage worker``; its exit status once it is gone."""
    process.send_signal(signal.SIGINT)  # nothing once it has exited
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired as e:
        tail = log.read_text()[-3000:] if log is not None else ""
        raise AssertionError(f"the worker ignored Ctrl-C for 60 s; its log:\n{tail}") from e
    finally:
        process.kill()  # only when it ignored Ctrl-C, and then wait() has raised


def test_digest_delivery_real_worker_posts_a_signed_digest(processed_database, receiver,  # type: ignore[no-untyped-def]
                                                           tmp_path):  # fmt: skip
    engine = db.get_engine(processed_database)
    week = digest.last_complete_week()
    log = tmp_path / "worker.log"
    process = start_worker(worker_env(processed_database, receiver), log)
    try:
        wait_for(lambda: bool(receiver.posts), process, log, "the digest's POST")
        wait_for(lambda: stored(engine, week).delivered_at is not None,  # type: ignore[union-attr]
                 process, log, "the delivery to be marked", timeout=60)  # fmt: skip
    finally:
        status = stop(process, log)
    assert status is not None and process.poll() is not None  # stopped, not left running
    [post] = receiver.posts
    assert post.path == f"{SECRET_PATH}?{SECRET_QUERY}"
    assert_signed_and_keyed(post, week)
    payload = post.payload
    assert payload["week"] == week and "delivery" not in payload["summary"]
    assert payload["summary"]["headline"]["feedback"]["this_week"] == LINES
    assert payload["text"].startswith(f"Feedback digest {week}: {LINES} feedback items")
    output = log.read_text()
    assert f"digest {week} delivered to 127.0.0.1 as {payload['delivery_id']}" in output
    assert "HTTP Request: POST http://127.0.0.1/…" in output
    assert "secret-path" not in output and "query-secret" not in output
    engine.dispose()


def test_digest_delivery_survives_a_worker_killed_mid_retry(processed_database, receiver,  # type: ignore[no-untyped-def]
                                                            tmp_path):  # fmt: skip
    """500, then SIGKILL while the worker waits to retry: not marked; the restarted worker's
    POST gets a 200 and marks it, with the same delivery_id."""
    engine = db.get_engine(processed_database)
    week = digest.last_complete_week()
    receiver.statuses += [500]
    # Backoff 3 s before the retry: the window in which the test kills the worker. The claim
    # runs out 2 * 2 * 2 + 3 = 11 s after it was taken.
    env = worker_env(processed_database, receiver, TRIAGE_DIGEST_WEBHOOK_ATTEMPTS="2",
                     TRIAGE_DIGEST_WEBHOOK_BACKOFF_SECONDS="3",
                     TRIAGE_DIGEST_WEBHOOK_TIMEOUT_SECONDS="2")  # fmt: skip
    log = tmp_path / "worker.log"
    first = start_worker(env, log)
    try:
        wait_for(lambda: bool(receiver.posts), first, log, "the first attempt")
    finally:
        first.kill()
        first.wait(30)
    assert first.returncode == -signal.SIGKILL
    assert len(receiver.posts) == 1  # killed before its retry
    assert stored(engine, week).delivered_at is None  # type: ignore[union-attr]

    second = start_worker(env, log)
    try:
        wait_for(lambda: stored(engine, week).delivered_at is not None,  # type: ignore[union-attr]
                 second, log, "the restarted worker's delivery")  # fmt: skip
    finally:
        stop(second, log)
    assert second.poll() is not None
    assert len(receiver.posts) == 2
    keys = {assert_signed_and_keyed(post, week) for post in receiver.posts}
    assert len(keys) == 1  # a receiver that saw the first drops the second
    engine.dispose()
