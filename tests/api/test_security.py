"""Rate limiting per key, security headers on every response, the documented error shape."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import unicodedata

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.security import HTML_CSP, RateLimiter
from tests.conftest import auth
from tests.support.reliability import note
from triage.models import Scope


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- the bucket on its own ----------------------------------------------------------------------


def test_security_rate_limiter_allows_burst_then_refills_at_rate():
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire(1) == pytest.approx(1.0)  # one token a second
    clock.now += 0.5
    assert limiter.acquire(1) == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire(1) == 0.0
    clock.now += 3600  # a long pause refills to the burst, never beyond it
    assert [limiter.acquire(1) for _ in range(4)][-1] > 0


def test_security_rate_limiter_keys_are_independent_and_zero_disables():
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    assert limiter.acquire(1) == 0.0 and limiter.acquire(1) > 0
    assert limiter.acquire(2) == 0.0
    off = RateLimiter(per_minute=0, burst=1, clock=clock)
    assert all(off.acquire(1) == 0.0 for _ in range(1000))


# --- through the API ----------------------------------------------------------------------------


@pytest.fixture
def limited(settings):  # type: ignore[no-untyped-def]
    """The app with 60 requests a minute and a burst of 3, on a clock the test moves."""
    clock = FakeClock()
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 60,
                                                 "rate_limit_burst": 3}))  # fmt: skip
    with TestClient(app) as client:
        app.state.rate_limiter.clock = clock
        yield client, clock


def test_security_rate_limit_answers_429_with_retry_after(limited, make_key, record_property):  # type: ignore[no-untyped-def]
    client, clock = limited
    key, other = make_key(Scope.read), make_key(Scope.read)
    statuses = [client.get("/v1/feedback", headers=auth(key)).status_code for _ in range(5)]
    note(record_property, fault="one key over its rate (burst 3, 60/min)", tried=5,
         checked="429 with Retry-After and code rate_limited; other keys unaffected")  # fmt: skip
    assert statuses == [200, 200, 200, 429, 429]
    response = client.get("/v1/feedback", headers=auth(key))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert error["code"] == "rate_limited" and "Retry-After" in error["message"]
    assert 0 < error["details"]["retry_after_seconds"] <= 1
    # Another key has its own bucket; the limited key recovers once time passes.
    assert client.get("/v1/feedback", headers=auth(other)).status_code == 200
    clock.now += 1.0
    assert client.get("/v1/feedback", headers=auth(key)).status_code == 200


def test_security_rate_limit_counts_wrong_scope_but_not_unknown_keys(limited, make_key,
                                                                   record_property):  # fmt: skip
    client, _ = limited
    note(record_property, fault="wrong-scope key and unknown key hammering (burst 3)", tried=9,
         checked="403s spend the key's bucket (then 429); unknown keys always 401")  # fmt: skip
    ingest = make_key(Scope.ingest)
    assert [client.get("/v1/feedback", headers=auth(ingest)).status_code for _ in range(4)] == [
        403, 403, 403, 429]  # fmt: skip
    # An unknown key has no key bucket to spend: a 401, until its address has failed too often
    # (burst 10 by default; tests/api/test_api_feedback_isolation.py).
    assert {client.get("/v1/feedback", headers=auth("trg_nope")).status_code
            for _ in range(5)} == {401}  # fmt: skip


def test_security_rate_limit_off_when_zero(settings, make_key):  # type: ignore[no-untyped-def]
    app = create_app(
        settings.model_copy(update={"rate_limit_per_minute": 0, "rate_limit_burst": 1})
    )
    with TestClient(app) as client:
        key = make_key(Scope.read)
        assert {client.get("/v1/feedback", headers=auth(key)).status_code for _ in range(20)} == {
            200}  # fmt: skip


def test_security_rate_limit_is_read_from_the_environment(monkeypatch):  # type: ignore[no-untyped-def]
    from triage.config import Settings

    monkeypatch.setenv("TRIAGE_RATE_LIMIT_PER_MINUTE", "5")
    monkeypatch.setenv("TRIAGE_RATE_LIMIT_BURST", "2")
    settings = Settings()
    assert (settings.rate_limit_per_minute, settings.rate_limit_burst) == (5, 2)


# --- headers ------------------------------------------------------------------------------------


def test_security_headers_nosniff_on_every_response(client, make_key, settings, record_property):  # type: ignore[no-untyped-def]
    note(record_property, fault="responses of every kind (JSON, 401, 404, 413, 422, Markdown)",
         tried=9, checked="X-Content-Type-Options: nosniff on each")  # fmt: skip
    key = make_key(Scope.admin)
    responses = [
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/openapi.json"),
        client.get("/v1/feedback", headers=auth(key)),
        client.get("/v1/feedback"),  # 401
        client.get("/v1/nope"),  # 404
        client.post("/v1/feedback", json=[], headers=auth(key)),  # 422
        client.get("/v1/digests/2026-W45?format=md", headers=auth(key)),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert "content-security-policy" not in response.headers  # not HTML
    small = create_app(settings.model_copy(update={"max_body_bytes": 1024}))
    with TestClient(small) as limited:
        too_big = limited.post("/v1/feedback", content=b"x" * 2048, headers=auth(key))
    assert too_big.status_code == 413 and too_big.headers["x-content-type-options"] == "nosniff"


def test_security_headers_csp_forbids_scripts_on_html(client, make_key, record_property):  # type: ignore[no-untyped-def]
    note(record_property, fault="HTML served by the API (the digest)", tried=1,
         checked="a content security policy that forbids scripts")  # fmt: skip
    page = client.get("/v1/digests/2026-W45", headers=auth(make_key(Scope.read)))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == HTML_CSP
    assert "script-src" not in HTML_CSP and "default-src 'none'" in HTML_CSP


def test_security_headers_docs_allow_only_their_pinned_scripts(client, record_property):  # type: ignore[no-untyped-def]
    note(record_property, fault="the OpenAPI docs pages (/docs, /redoc)", tried=3,
         checked="scripts only from our own bundle and by hash; never 'unsafe-inline'")  # fmt: skip
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        page = client.get(path)
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1)  # type: ignore[union-attr]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        for inline in re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL):
            digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in script_src
        assert page.headers["x-content-type-options"] == "nosniff"


def test_security_docs_work_offline_from_their_own_assets(client):  # type: ignore[no-untyped-def]
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        policy = page.headers["content-security-policy"]
        assert "http" not in policy and "script-src 'self'" in policy, policy
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
        for asset in assets:
            served = client.get(asset)
            assert served.status_code == 200 and len(served.content) > 1000, asset
            assert served.headers["x-content-type-options"] == "nosniff"
        assert "fonts.googleapis" not in page.text and "cdn." not in page.text


def test_security_openapi_documents_the_error_shape(client, record_property):  # type: ignore[no-untyped-def]
    note(record_property, fault="the OpenAPI schema's error responses", tried=1,
         checked="401/403/413/422/429 documented as {error: {code, message, details}}")  # fmt: skip
    spec = client.get("/openapi.json").json()
    post = spec["paths"]["/v1/feedback"]["post"]["responses"]
    for status in ("401", "403", "413", "422", "429"):
        ref = post[status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorResponse")
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert set(spec["components"]["schemas"]["ErrorBody"]["required"]) == {"code", "message"}


# --- make audit ---------------------------------------------------------------------------------


def _audit_module():  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"
    spec = importlib.util.spec_from_file_location("ci_audit", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_security_audit_lists_vulnerabilities_and_fails(capsys):  # type: ignore[no-untyped-def]
    audit = _audit_module()
    found = {"dependencies": [
        {"name": "fastapi", "version": "0.1.0", "vulns": [
            {"id": "PYSEC-0000-1", "fix_versions": ["0.2.0"], "description": "Bad thing."}]},
        {"name": "numpy", "version": "2.4.6", "vulns": []},
        {"name": "private-pkg", "version": "1.0", "skip_reason": "not on PyPI"},
    ]}  # fmt: skip
    assert audit.report(found) == 1
    out = capsys.readouterr().out
    assert "fastapi==0.1.0  PYSEC-0000-1  fixed in: 0.2.0" in out
    assert "checked 2 locked releases, 1 known vulnerabilities" in out and "private-pkg" in out


def test_security_audit_reads_every_release_of_the_lock_file():  # type: ignore[no-untyped-def]
    """`make audit` audits requirements.lock, what `make install` installs, torch's CPU build
    as its public release (the vulnerability database knows no +cpu)."""
    audit = _audit_module()
    lock = audit.LOCK.read_text(encoding="utf-8")
    pins = audit.pins(lock)
    assert "torch==2.13.0" in pins and "fastapi==0.165.0" in pins and "pytest==9.2.0" in pins
    assert all("+" not in pin for pin in pins)
    requirements = [line for line in lock.splitlines() if line[:1].isalnum()]
    assert len(pins) == len(requirements) > 100  # every locked release, direct or not
    sample = "torch==2.13.0+cpu \\\n    --hash=sha256:00\n    # via x\nrich==15.0.0 \\\n"
    assert audit.pins(sample) == ["torch==2.13.0", "rich==15.0.0"]


def test_security_audit_says_plainly_when_nothing_was_checked(capsys, monkeypatch):  # type: ignore[no-untyped-def]
    audit = _audit_module()
    unknown = {"dependencies": [{"name": "numpy", "version": "2.4.6", "skip_reason": "404"}]}
    assert audit.report(unknown) == 0
    assert audit.UNREACHABLE in capsys.readouterr().out
    monkeypatch.setattr(audit, "reachable", lambda timeout: "URLError: no route")
    assert audit.main() == 0
    assert capsys.readouterr().out.startswith(
        "could not reach the vulnerability database; nothing was checked"
    )
    assert audit.report({"dependencies": [{"name": "numpy", "version": "2.4.6", "vulns": []}]}) == 0


# --- personal data never leaves redacted form ----------------------------------------------------

EMAILS = ["jane.roe@example.com", "JOHN.DOE+billing@corp.example.org"]
PHONES = ["(415) 555-0132", "415-555-0199", "+49 30 901820"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881"]
# The spellings issue 14 found unredacted; the standard test IBAN and test card.
IBANS = ["DE89370400440532013000", "de89 3704 0044 0532 0130 00", "DE 89 3704 0044 0532 0130 00"]
ODD_CARDS = ["4111.1111.1111.1111", "4111  1111  1111  1111"]
FULLWIDTH_EMAIL = "ｍａｒｉａ＠ｅｘａｍｐｌｅ．ｃｏｍ"
PII_TOPICS = [
    "The export button on the report screen does nothing when I click it.",
    "Forecast numbers for last month do not match our sales ledger.",
    "Reply drafts for our Spanish customers come out in German.",
]


def _planted() -> list[str]:
    """Every planted value, folded (NFKC) and lowercased too, and the digits alone of each phone,
    card and IBAN."""
    values = [*EMAILS, *PHONES, *CARDS, *IBANS, *ODD_CARDS, FULLWIDTH_EMAIL]
    digits = ["".join(c for c in v if c.isdigit()) for v in [*PHONES, *CARDS, *IBANS]]
    folded = [unicodedata.normalize("NFKC", v) for v in values]
    return sorted({*values, *folded, *(v.lower() for v in folded), *digits})


def _readable(text: str) -> str:
    """An output as a person reads it: JSON escapes decoded, compatibility characters folded."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text + "\n" + unicodedata.normalize("NFKC", text)


def _pii_metadata(i: int) -> dict:  # type: ignore[type-arg]
    """Personal data at every depth of metadata: nested values, list items, a key, a number."""
    return {
        "plan": "pro",
        "contact": {"phone": PHONES[i % 3], "emails": [EMAILS[i % 2], {"alt": FULLWIDTH_EMAIL}]},
        "billing": {
            "iban": IBANS[i % 3],
            "card": ODD_CARDS[i % 2],
            "card_number": 4111111111111111,
        },
        EMAILS[(i + 1) % 2]: "an e-mail address as a key",
    }


def _pii_ticket(i: int, when: str) -> dict:  # type: ignore[type-arg]
    return {
        "source": "pii",
        "external_id": f"P-{i}" if i % 5 else f"P-{i} {EMAILS[i % 2]}",
        "created_at": when,
        "customer_id": [EMAILS[i % 2], PHONES[2], f"c{i}"][i % 3],
        "user_id": EMAILS[i % 2],
        "session_id": [IBANS[i % 3], CARDS[i % 3]][i % 2],
        "output_id": f"pii-{i % 6}",
        "metadata": _pii_metadata(i),
        "text": f"{PII_TOPICS[i % 3]} Email me at {EMAILS[i % 2]} or call {PHONES[i % 3]}. "
        f"You also charged my card {CARDS[i % 3]} twice, and {ODD_CARDS[i % 2]} once. "
        f"Refund to {IBANS[i % 3]} or write to {FULLWIDTH_EMAIL}.",
    }


@pytest.fixture(scope="module")
def real_preprocessor():  # type: ignore[no-untyped-def]
    from triage.preprocess import Preprocessor

    return Preprocessor()


def test_security_personal_data_never_leaves_redacted_form(  # type: ignore[no-untyped-def]
    client, make_key, engine, settings, monkeypatch, caplog, real_preprocessor, record_property
):
    """Issue 14: personal data planted in every field a client sends (text, identifiers, nested
    metadata values and keys) is absent from every output, on SQLite and PostgreSQL."""
    import logging
    from datetime import timedelta

    from typer.testing import CliRunner

    from triage import digest
    from triage.cli import app
    from triage.pipeline import Pipeline

    # The level `triage worker` and `triage serve` log at; DEBUG has its own test below.
    caplog.set_level(logging.INFO)
    week = digest.last_complete_week()
    start, _ = digest.parse_week(week)
    when = (start + timedelta(days=2, hours=10)).isoformat()
    headers = auth(make_key(Scope.admin))
    outputs = [
        {"output_id": f"pii-{k}", "model": "summarizer", "model_version": "2.0", "created_at": when,
         "input": f"Summarise the ticket of {EMAILS[k % 2]}, phone {PHONES[k % 3]}.",
         "output": f"Refund card {CARDS[k % 3]} or {IBANS[k % 3]}; reply to {EMAILS[k % 2]} or "
                   f"{FULLWIDTH_EMAIL} or call {PHONES[k % 3]}.",
         "user_id": EMAILS[k % 2], "session_id": CARDS[k % 3], "metadata": _pii_metadata(k)}
        for k in range(6)
    ]  # fmt: skip
    assert client.post("/v1/model-outputs", json={"items": outputs}, headers=headers).is_success
    tickets = [_pii_ticket(i, when) for i in range(30)]
    # Nothing left to triage once redacted: these fail, and their fields are read all the same.
    tickets += [
        {**_pii_ticket(i, when), "external_id": f"F-{i}", "text": f"🙂 {EMAILS[i % 2]} {CARDS[0]}"}
        for i in range(30, 33)
    ]
    assert client.post("/v1/feedback", json={"items": tickets}, headers=headers).is_success

    Pipeline(settings, preprocessor=real_preprocessor).run(engine)
    monkeypatch.setattr(
        "triage.preprocess.Preprocessor.from_settings", classmethod(lambda c, s: real_preprocessor)
    )
    runner = CliRunner()
    issues = client.get("/v1/issues?limit=1000", headers=headers).json()
    feedback = client.get("/v1/feedback?limit=1000", headers=headers).json()
    surfaces = {
        "GET /v1/issues": json.dumps(issues),
        "GET /v1/issues/{id}": " ".join(
            client.get(f"/v1/issues/{i['id']}", headers=headers).text for i in issues["items"]
        ),
        "GET /v1/feedback": json.dumps(feedback),
        "GET /v1/feedback/{id}": " ".join(
            client.get(f"/v1/feedback/{f['id']}", headers=headers).text for f in feedback["items"]
        ),
        "GET /v1/feedback?status=failed": client.get(
            "/v1/feedback?status=failed", headers=headers
        ).text,
        "digest html (API)": client.get(f"/v1/digests/{week}", headers=headers).text,
        "digest md (API)": client.get(f"/v1/digests/{week}?format=md", headers=headers).text,
        "triage digest (CLI)": runner.invoke(app, ["digest", "--week", week, "-f", "md"]).stdout,
    }
    for args in (
        ["export", "feedback"],
        ["export", "feedback", "-f", "csv"],
        ["issues", "--format", "json"],
        ["issues", "--format", "csv"],
        ["issues"],
    ):
        result = runner.invoke(app, args, catch_exceptions=False)
        surfaces["triage " + " ".join(args)] = result.stdout + result.stderr  # fmt: skip
    surfaces["logs"] = caplog.text
    leaks = {
        name: [v for v in _planted() if v in _readable(text)] for name, text in surfaces.items()
    }

    note(record_property, fault="e-mails, phones, cards, IBANs (odd spellings, fullwidth) planted "
         "in ticket text, identifiers, nested metadata values and keys, and model outputs",
         tried=f"{len(tickets)} tickets, {len(outputs)} model outputs, "
               f"{len(_planted())} planted strings",
         checked="absent from: " + ", ".join(surfaces))  # fmt: skip
    leaked = {name: sorted(set(found)) for name, found in leaks.items() if found}
    assert not leaked, f"personal data leaked: {leaked}"
    assert feedback["total"] == 33 and issues["total"] >= 1
    assert {f["status"] for f in feedback["items"]} == {"processed", "failed"}
    assert "<EMAIL>" in surfaces["triage export feedback"]  # the text did come through
    assert "Linked output" in surfaces["digest md (API)"]  # and so did the model outputs
    # Identifiers and metadata came through too, redacted where they held personal data.
    first = feedback["items"][0]
    assert (first["user_id"], first["customer_id"]) == ("<EMAIL>", "<EMAIL>")
    assert first["metadata"]["plan"] == "pro" and "<EMAIL>" in first["metadata"]
    assert first["metadata"]["billing"] == {"iban": "<IBAN>", "card": "<CARD>",
                                            "card_number": "<CARD>"}  # fmt: skip


def test_security_dropping_raw_text_covers_failed_tickets(  # type: ignore[no-untyped-def]
    client, make_key, engine, settings, real_preprocessor, record_property
):
    """Issue 14: TRIAGE_KEEP_RAW_TEXT=false left the raw text of failed tickets in place."""
    from sqlmodel import select

    from triage import db
    from triage.models import Feedback
    from triage.pipeline import Pipeline

    tickets = [
        {"source": "raw", "external_id": "ok", "text": f"The export fails. Mail {EMAILS[0]}."},
        {"source": "raw", "external_id": "fails", "text": f"🙂 {EMAILS[0]}"},
    ]
    headers = auth(make_key(Scope.ingest))
    assert client.post("/v1/feedback", json={"items": tickets}, headers=headers).is_success
    dropping = settings.model_copy(update={"keep_raw_text": False})
    Pipeline(dropping, preprocessor=real_preprocessor).process_pending(engine)
    with db.session_scope(engine) as session:
        rows = {row.external_id: row for row in session.exec(select(Feedback)).all()}
    note(record_property, fault="TRIAGE_KEEP_RAW_TEXT=false, a processed and a failed ticket",
         tried=2, checked="raw text cleared on both")  # fmt: skip
    assert {key: (row.status, row.text) for key, row in rows.items()} == {
        "ok": ("processed", None), "fails": ("failed", None)}  # fmt: skip


def test_security_redacted_identifiers_may_outgrow_their_limit(client, make_key, record_property):  # type: ignore[no-untyped-def]
    """A placeholder longer than the value it replaces ("<PERSON>" for "Jo") must not turn a
    255-character identifier into a 500."""
    customer_id = "abcd" * 60 + " contact: Jo"
    ticket = {"source": "s", "external_id": "long", "text": "The export fails.",
              "customer_id": customer_id}  # fmt: skip
    headers = auth(make_key(Scope.admin))
    (stored,) = client.post("/v1/feedback", json={"items": [ticket]}, headers=headers).json()[
        "items"
    ]
    shown = client.get(f"/v1/feedback/{stored['id']}", headers=headers)
    note(record_property, fault="a 252-character customer_id ending in a name", tried=1,
         checked="read back redacted, longer than the 255 allowed in, without a 500")  # fmt: skip
    assert shown.status_code == 200
    assert shown.json()["customer_id"] == "abcd" * 60 + " contact: <PERSON>"


def test_security_debug_logs_keep_personal_data_out(real_preprocessor, caplog, record_property):  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.DEBUG)
    real_preprocessor.process([f"Email me at {EMAILS[0]} or call {PHONES[0]} about the export."])
    note(record_property, fault="personal data in a ticket, logs at DEBUG level", tried=1,
         checked="no planted value in any log record")  # fmt: skip
    assert not [v for v in _planted() if v in caplog.text]


@pytest.mark.xfail(
    strict=True,
    reason="the redactor needs a context word (call, phone, ...) for national phone formats; "
    "these are left as they are (a recall gap for triage/preprocess/pii.py)",
)
@pytest.mark.parametrize(
    "text",
    ["reply to jo or 415-555-0199.", "my number is 020 7946 0958"],
    ids=["us-number-after-or", "uk-number-after-my-number-is"],
)
def test_security_phone_numbers_without_context_are_redacted(real_preprocessor, text,
                                                            record_property):  # fmt: skip
    note(record_property, fault=f"phone number without a context word: {text!r}", tried=1,
         checked="redacted to <PHONE>")  # fmt: skip
    (redacted,) = real_preprocessor.redact([text])
    assert "<PHONE>" in redacted
