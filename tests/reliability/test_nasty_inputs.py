"""A named list of nasty inputs, each with its expected 4xx or a clean store; never a 500.

Every case runs on SQLite and on PostgreSQL. Decisions the cases pin:

- NUL (U+0000) anywhere in text (fields, metadata keys and values, query parameters) is a 422
  at the edge, not stripped: PostgreSQL cannot store it in text, and silently changing a ticket
  would change its idempotency hash and could make two external_ids collide.
- A lone surrogate ("\\ud800" in JSON) is a 422 for the same reason: no database encodes it.
- Metadata nests at most ``MAX_METADATA_DEPTH`` (20) levels; deeper is a 422. JSON nested past
  Python's recursion limit is a 400, like any body that cannot be decoded.
- Numbers sent as strings ("12") are coerced (pydantic's lax mode); NaN and Infinity are 422.
- Timestamps without a zone are read as UTC; year 9999 is stored; a time past the last UTC
  instant (9999-12-31T23:59:59-05:00) is a 422.
- Lengths count Unicode code points: 10,000 emoji are 10,000 characters and are stored.
- HTML and SQL are stored verbatim and returned verbatim in JSON; HTML pages escape them.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from tests.conftest import auth
from tests.support.reliability import note
from triage import db
from triage.models import (
    MAX_METADATA_DEPTH,
    Feedback,
    Issue,
    Link,
    Membership,
    ModelOutput,
    Scope,
    Unit,
)

FRAGMENT = "<script>alert('x')</script><img src=x onerror=alert(1)>'; DROP TABLE feedback; --"


def ticket(**extra: Any) -> dict[str, Any]:
    return {"source": "zendesk", "external_id": "N-1", "text": "The export button is broken.",
            **extra}  # fmt: skip


def nested(depth: int) -> dict[str, Any]:
    """A metadata object ``depth`` levels deep: {"a": {"a": ... {} }}."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@dataclass(frozen=True)
class Nasty:
    """One nasty request and what must come of it."""

    body: Any = None  # sent as JSON
    raw: bytes | None = None  # sent as bytes instead, labelled application/json
    path: str = "/v1/feedback"
    method: str = "POST"
    status: int = 202
    code: str | None = None
    field: str | None = None  # a 422 must name it
    stored: Callable[[dict[str, Any], Feedback], None] | None = None


def _stored_text(expected: str) -> Callable[[dict[str, Any], Feedback], None]:
    def check(_public: dict[str, Any], row: Feedback) -> None:
        assert row.text == expected and len(row.text) == len(expected)

    return check


def _stored(**expected: Any) -> Callable[[dict[str, Any], Feedback], None]:
    def check(public: dict[str, Any], _row: Feedback) -> None:
        for name, value in expected.items():
            assert public[name] == value, (name, public[name])

    return check


def _stored_created_at(expected: datetime) -> Callable[[dict[str, Any], Feedback], None]:
    def check(public: dict[str, Any], row: Feedback) -> None:
        assert row.created_at.replace(tzinfo=UTC) == expected
        assert datetime.fromisoformat(public["created_at"]) == expected

    return check


def _everything_verbatim(public: dict[str, Any], row: Feedback) -> None:
    assert row.text == FRAGMENT
    for name in ("source", "external_id", "customer_id", "user_id", "session_id", "output_id"):
        assert public[name] == FRAGMENT, name
    assert public["metadata"] == {FRAGMENT: [FRAGMENT, {"k": FRAGMENT}]}


RTL = "המוצר לא עובד \u202ewolf tropxe\u202c — التصدير لا يعمل"
SAFE_DEPTH = nested(MAX_METADATA_DEPTH)

CASES = [
    pytest.param(
        Nasty(
            raw=b'{"source": "z", "external_id": "1", "text": "caf\xe9 \xff\xfe"}',
            status=400,
            code="malformed_json",
        ),
        id="invalid-utf8-body",
    ),
    pytest.param(
        Nasty(
            raw=b"\xef\xbb\xbf" + json.dumps(ticket()).encode(), stored=_stored(source="zendesk")
        ),
        id="utf8-bom-body",
    ),
    pytest.param(
        Nasty(ticket(text="before\x00after"), status=422, code="invalid_fields", field="text"),
        id="nul-in-text",
    ),
    pytest.param(
        Nasty(ticket(external_id="N\x001"), status=422, code="invalid_fields", field="external_id"),
        id="nul-in-external-id",
    ),
    pytest.param(
        Nasty(
            ticket(metadata={"plan": "pro\x00"}),
            status=422,
            code="invalid_fields",
            field="metadata",
        ),
        id="nul-in-metadata-value",
    ),
    pytest.param(
        Nasty(
            ticket(metadata={"pl\x00an": "pro"}),
            status=422,
            code="invalid_fields",
            field="metadata",
        ),
        id="nul-in-metadata-key",
    ),
    pytest.param(
        Nasty(
            {"items": [{"output_id": "o-1", "model": "m", "output": "a\x00b"}]},
            path="/v1/model-outputs",
            status=422,
            code="invalid_fields",
            field="items.0.output",
        ),
        id="nul-in-model-output",
    ),
    pytest.param(
        Nasty(
            path="/v1/feedback?source=z%00",
            method="GET",
            status=422,
            code="invalid_fields",
            field="source",
        ),
        id="nul-in-query-param",
    ),
    pytest.param(
        Nasty(
            raw=json.dumps(ticket()).encode().replace(b"export", b"\\ud83d export"),
            status=422,
            code="invalid_fields",
            field="text",
        ),
        id="lone-surrogate-in-text",
    ),
    pytest.param(
        Nasty(ticket(text="x" * 100_000), status=422, code="invalid_fields", field="text"),
        id="text-100k-chars",
    ),
    pytest.param(
        Nasty(ticket(text="😀" * 10_000), stored=_stored_text("😀" * 10_000)),
        id="text-10000-emoji-stored",
    ),
    pytest.param(
        Nasty(ticket(text="👩‍👩‍👧" * 5_000), status=422, code="invalid_fields", field="text"),
        id="text-5000-zwj-families-25000-code-points",
    ),
    pytest.param(
        Nasty(ticket(text=RTL, customer_id=RTL), stored=_stored(customer_id=RTL)),
        id="right-to-left-text-stored",
    ),
    pytest.param(
        Nasty(
            ticket(text="\x1b[31mred\x1b[0m\r\n\ttabbed\u200b\ufeff"),
            stored=_stored_text("\x1b[31mred\x1b[0m\r\n\ttabbed\u200b\ufeff"),
        ),
        id="control-and-invisible-chars-stored",
    ),
    pytest.param(
        Nasty(ticket(metadata=nested(100)), status=422, code="invalid_fields", field="metadata"),
        id="metadata-nested-100-deep",
    ),
    pytest.param(
        Nasty(ticket(metadata=SAFE_DEPTH), stored=_stored(metadata=SAFE_DEPTH)),
        id="metadata-nested-20-deep-stored",
    ),
    pytest.param(
        Nasty(
            raw=b'{"source": "z", "external_id": "1", "text": "t", "metadata": '
            + b'{"a": ' * 100_000
            + b"1"
            + b"}" * 100_001,
            status=400,
            code="malformed_json",
        ),
        id="json-nested-100000-deep",
    ),
    pytest.param(
        Nasty(ticket(customer_value="12"), stored=_stored(customer_value=12.0)),
        id="number-as-string-coerced",
    ),
    pytest.param(
        Nasty(
            raw=json.dumps(ticket()).encode()[:-1] + b', "customer_value": 1e999}',
            status=422,
            code="invalid_fields",
            field="customer_value",
        ),
        id="number-overflowing-to-infinity",
    ),
    pytest.param(
        Nasty(
            ticket(customer_value="NaN"), status=422, code="invalid_fields", field="customer_value"
        ),
        id="number-nan-as-string",
    ),
    pytest.param(
        Nasty(
            raw=json.dumps(ticket()).encode()[:-1] + b', "metadata": {"v": 1e999}}',
            status=422,
            code="invalid_fields",
            field="metadata",
        ),
        id="metadata-infinity",
    ),
    pytest.param(
        Nasty(
            raw=json.dumps(ticket()).encode()[:-1] + b', "customer_value": ' + b"9" * 5000 + b"}",
            status=400,
            code="malformed_json",
        ),
        id="integer-of-5000-digits",
    ),
    pytest.param(
        Nasty(
            ticket(created_at="2026-11-02T10:00:00"),
            stored=_stored_created_at(datetime(2026, 11, 2, 10, tzinfo=UTC)),
        ),
        id="timestamp-without-zone-is-utc",
    ),
    pytest.param(
        Nasty(
            ticket(created_at="9999-12-31T23:59:59Z"),
            stored=_stored_created_at(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ),
        id="timestamp-year-9999-stored",
    ),
    pytest.param(
        Nasty(
            ticket(created_at="9999-12-31T23:59:59-05:00"),
            status=422,
            code="invalid_fields",
            field="created_at",
        ),
        id="timestamp-past-the-last-utc-instant",
    ),
    pytest.param(
        # Past the last instant a datetime holds once converted to UTC: a 422 naming `since`.
        Nasty(
            path="/v1/feedback?since=9999-12-31T23:59:59-05:00",
            method="GET",
            status=422,
            code="invalid_fields",
            field="since",
        ),
        id="query-timestamp-year-9999",
    ),
    pytest.param(
        Nasty(
            ticket(external_id="x" * 10_000), status=422, code="invalid_fields", field="external_id"
        ),
        id="external-id-10000-chars",
    ),
    pytest.param(
        Nasty(
            {"items": [ticket(external_id=f"N-{i}") for i in range(1001)]},
            status=422,
            code="invalid_fields",
            field="items",
        ),
        id="batch-of-1001-items",
    ),
    pytest.param(Nasty([ticket()], status=422, code="invalid_body"), id="body-is-a-list"),
    pytest.param(Nasty("just a string", status=422, code="invalid_body"), id="body-is-a-string"),
    pytest.param(Nasty(raw=b"", status=422, code="invalid_body"), id="body-empty"),
    pytest.param(
        Nasty(
            {
                "source": FRAGMENT,
                "external_id": FRAGMENT,
                "text": FRAGMENT,
                "customer_id": FRAGMENT,
                "user_id": FRAGMENT,
                "session_id": FRAGMENT,
                "output_id": FRAGMENT,
                "metadata": {FRAGMENT: [FRAGMENT, {"k": FRAGMENT}]},
            },
            stored=_everything_verbatim,
        ),
        id="html-and-sql-in-every-field-stored-verbatim",
    ),
    pytest.param(
        Nasty(
            {
                "items": [
                    {
                        "output_id": FRAGMENT,
                        "model": FRAGMENT,
                        "model_version": FRAGMENT,
                        "feature": FRAGMENT,
                        "input": FRAGMENT,
                        "output": FRAGMENT,
                        "user_id": FRAGMENT,
                        "session_id": FRAGMENT,
                        "metadata": {FRAGMENT: FRAGMENT},
                    }
                ]
            },
            path="/v1/model-outputs",
        ),
        id="html-and-sql-in-every-model-output-field",
    ),
    pytest.param(
        Nasty(path=f"/v1/feedback?source={FRAGMENT}", method="GET", status=200),
        id="sql-in-query-param",
    ),
]


def send(client, case: Nasty, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    if case.raw is not None:
        return client.request(case.method, case.path, content=case.raw,
                              headers={**headers, "content-type": "application/json"})  # fmt: skip
    if case.method == "GET":
        return client.get(case.path, headers=headers)
    return client.request(case.method, case.path, json=case.body, headers=headers)


@pytest.mark.parametrize("case", CASES)
def test_nasty_inputs_answer_4xx_or_store_cleanly(client, make_key, engine, case, request,
                                                  record_property):  # fmt: skip
    headers = auth(make_key(Scope.admin))
    response = send(client, case, headers)
    expected = f"{case.status} {case.code}" if case.code else f"{case.status}, stored verbatim"
    note(record_property, fault=f"nasty input: {request.node.callspec.id.split('-', 1)[1]}",
         tried=1, checked=f"answer {expected}; no 500; store unchanged on 4xx")  # fmt: skip
    assert response.status_code == case.status, response.text[:500]
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] == case.code and error["message"]
        if case.field:
            assert case.field in [d["field"] for d in error["details"]], error["details"]
            assert case.field in error["message"]
        with db.session_scope(engine) as session:
            assert session.exec(select(func.count()).select_from(Feedback)).one() == 0
            assert session.exec(select(func.count()).select_from(ModelOutput)).one() == 0
        return
    if case.path == "/v1/feedback" and case.method == "POST":
        accepted = response.json()
        public = client.get(f"/v1/feedback/{accepted['id']}", headers=headers).json()
        with db.session_scope(engine) as session:
            row = session.get(Feedback, accepted["id"])
            # A retry of the same nasty ticket is recognised, not stored twice.
            again = send(client, case, headers).json()
            assert again["id"] == accepted["id"] and again["duplicate"] is True
            if case.stored is not None:
                case.stored(public, row)
    if case.path == "/v1/model-outputs":
        with db.session_scope(engine) as session:
            output = session.exec(select(ModelOutput)).one()
            assert output.output == FRAGMENT and output.meta == {FRAGMENT: FRAGMENT}


def test_nasty_inputs_html_and_sql_are_escaped_in_the_digest(client, make_key, engine,
                                                             record_property):  # fmt: skip
    """Customer text with markup, in every place the digest shows text, comes out inert."""
    when = datetime(2026, 11, 4, 10, tzinfo=UTC)  # inside 2026-W45
    with db.session_scope(engine) as session:
        issue = Issue(title=FRAGMENT, keywords=[FRAGMENT], quotes=[FRAGMENT], category="ui",
                      evidence=[{"reason": FRAGMENT, "signal": FRAGMENT}], size=1,
                      model_versions=[{"model": FRAGMENT, "version": FRAGMENT}])  # fmt: skip
        output = ModelOutput(output_id="o", model=FRAGMENT, model_version=FRAGMENT,
                             input=FRAGMENT, output=FRAGMENT, created_at=when,
                             content_sha256="0")  # fmt: skip
        feedback = Feedback(source="s", external_id="e", text=FRAGMENT, text_sha256="0",
                            redacted_text=FRAGMENT, status="processed", created_at=when,
                            received_at=when, customer_id=FRAGMENT)  # fmt: skip
        session.add_all([issue, output, feedback])
        session.flush()
        unit = Unit(feedback_id=feedback.id, position=0, text=FRAGMENT, text_hash="h")
        session.add(unit)
        session.flush()
        session.add(Membership(unit_id=unit.id, issue_id=issue.id, method="cluster"))
        session.add(Link(feedback_id=feedback.id, model_output_id=output.id, method="explicit",
                         confidence=1.0))  # fmt: skip
    headers = auth(make_key(Scope.read))
    page = client.get("/v1/digests/2026-W45", headers=headers)
    markdown = client.get("/v1/digests/2026-W45?format=md", headers=headers)
    note(record_property, fault="nasty input: HTML and SQL in every text the digest shows",
         tried=2, checked="digest HTML and Markdown escape it; no tag survives")  # fmt: skip
    assert page.status_code == 200 and markdown.status_code == 200
    assert "<script" not in page.text and "<img" not in page.text
    assert html.escape("<script>alert(", quote=False) in page.text
    assert "<script" not in markdown.text and "<img" not in markdown.text
    with db.session_scope(engine) as session:  # and the SQL did nothing
        assert session.exec(select(func.count()).select_from(Feedback)).one() == 1
