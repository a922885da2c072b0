"""One client cannot block another (issue 14): per-item batch results, changed retries as
conflicts, a metadata cap, source-bound ingest keys and throttled failed authentication."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from api.main import create_app
from tests.conftest import auth
from tests.support.reliability import note
from triage import db, store
from triage.models import ApiKey, Feedback, Scope


def ticket(i: int = 1, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"source": "zendesk", "external_id": f"T-{i}", "text": f"Export button {i} is broken.",
            **extra}  # fmt: skip


def stored(engine) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        rows = session.exec(select(Feedback.source, Feedback.external_id).order_by(Feedback.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def bound_key(engine, *sources: str) -> str:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        _, secret = store.create_api_key(session, scope=Scope.ingest, sources=sources)
    return secret


# --- per-item batch results ---------------------------------------------------------------------


def test_api_feedback_batch_answers_each_item_and_blocks_none(client, make_key, engine,  # type: ignore[no-untyped-def]
                                                              record_property):  # fmt: skip
    """100 squatted ids in a batch of 500 no longer make the batch store nothing."""
    squatter, real = make_key(Scope.ingest), make_key(Scope.ingest)
    squatted = {"items": [ticket(i, text="squatted") for i in range(0, 500, 5)]}
    assert client.post("/v1/feedback", json=squatted, headers=auth(squatter)).status_code == 202
    items = [ticket(i) for i in range(500)]
    items[7] = {"source": "zendesk", "external_id": "T-7"}  # no text
    items[8] = "not an object"
    response = client.post("/v1/feedback", json={"items": items}, headers=auth(real))
    note(record_property, fault="100 squatted ids and 2 invalid items in a batch of 500",
         tried=500, checked="202; every item answered in order; the 398 good stored")  # fmt: skip
    assert response.status_code == 202
    answers = response.json()["items"]
    assert [a["index"] for a in answers] == list(range(500))
    results = [a["result"] for a in answers]
    assert results.count("conflict") == 100 and results.count("invalid") == 2
    assert results.count("stored") == 398
    assert answers[5]["fields"] == ["text"] and answers[5]["external_id"] == "T-5"
    assert answers[7]["external_id"] == "T-7" and answers[7]["id"] is None
    assert answers[7]["errors"][0]["field"] == "items.7.text"
    assert answers[8]["errors"][0]["field"] == "items.8" and answers[8]["external_id"] is None
    assert len(stored(engine)) == 100 + 398


def test_api_feedback_batch_duplicate_and_repeat_within_a_batch(client, make_key):  # type: ignore[no-untyped-def]
    key = make_key(Scope.ingest)
    client.post("/v1/feedback", json=ticket(1), headers=auth(key))
    batch = {"items": [ticket(1), ticket(2), ticket(2), ticket(2, text="other")]}
    answers = client.post("/v1/feedback", json=batch, headers=auth(key)).json()["items"]
    assert [a["result"] for a in answers] == ["duplicate", "stored", "duplicate", "conflict"]
    assert answers[0]["duplicate"] is True and answers[1]["duplicate"] is False
    # T-2 was written by this same request: its id is committed with the batch, but the store
    # names only ids that were stored before, so no answer can point at a rolled-back row.
    assert answers[3]["id"] is None and answers[3]["fields"] == ["text"]


def test_api_feedback_single_still_409_and_422(client, make_key):  # type: ignore[no-untyped-def]
    key = make_key(Scope.ingest)
    client.post("/v1/feedback", json=ticket(1), headers=auth(key))
    conflict = client.post("/v1/feedback", json=ticket(1, text="other"), headers=auth(key))
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "conflict"
    invalid = client.post("/v1/feedback", json={"source": "z", "text": "x"}, headers=auth(key))
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "invalid_fields"


def test_api_feedback_strict_batch_is_still_refused_whole(client, make_key, engine):  # type: ignore[no-untyped-def]
    batch = {"items": [ticket(1), ticket(2, customer="acme")]}
    response = client.post(
        "/v1/feedback?strict=true", json=batch, headers=auth(make_key(Scope.ingest))
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "unknown_fields"
    assert stored(engine) == []


# --- a changed retry is a conflict -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_id": "c-2"}, "customer_id"),
        ({"metadata": {"plan": "free"}}, "metadata"),
        ({"created_at": "2026-11-21T09:00:00Z"}, "created_at"),
        ({"customer_value": 5.0}, "customer_value"),
    ],
)
def test_api_feedback_changed_retry_is_409_naming_the_field(  # type: ignore[no-untyped-def]
    client, make_key, engine, change, field, record_property
):
    note(record_property, fault=f"a retry with the same text and another {field}", tried=1,
         checked="409 naming the field (conflict in a batch), not a duplicate")  # fmt: skip
    key = make_key(Scope.ingest)
    original = ticket(1, customer_id="c-1", metadata={"plan": "pro"},
                      created_at="2026-11-20T09:00:00+01:00", customer_value=1.0)  # fmt: skip
    first = client.post("/v1/feedback", json=original, headers=auth(key)).json()
    # The same instant in another zone is the same value: a true retry, not a conflict.
    same = {**original, "created_at": "2026-11-20T08:00:00Z"}
    assert client.post("/v1/feedback", json=same, headers=auth(key)).json()["duplicate"] is True
    response = client.post("/v1/feedback", json={**original, **change}, headers=auth(key))
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict" and field in error["message"]
    assert error["details"]["conflicts"] == [
        {
            "index": 0,
            "source": "zendesk",
            "external_id": "T-1",
            "id": first["id"],
            "fields": [field],
        }
    ]
    batch = client.post("/v1/feedback", json={"items": [{**original, **change}]}, headers=auth(key))
    assert batch.json()["items"][0]["result"] == "conflict"
    assert batch.json()["items"][0]["fields"] == [field]


def test_api_feedback_webhook_batch_conflict_names_no_uncommitted_id(client, make_key, engine):  # type: ignore[no-untyped-def]
    """All-or-nothing callers (webhooks, files) roll back: their 409 names no id of this request."""
    from triage.errors import ConflictError

    with db.session_scope(engine) as session:
        with pytest.raises(ConflictError) as raised:
            store.add_feedback(session, items=[_create(ticket(1)), _create(ticket(1, text="x"))])
        session.rollback()
    assert raised.value.details["conflicts"][0]["id"] is None
    assert stored(engine) == []


def _create(data: dict):  # type: ignore[no-untyped-def]
    from triage.models import FeedbackCreate

    return FeedbackCreate.model_validate(data)


# --- metadata cap ------------------------------------------------------------------------------


def test_api_feedback_metadata_over_the_cap_is_422(  # type: ignore[no-untyped-def]
    settings, make_key, engine, record_property
):
    note(record_property, fault="metadata over TRIAGE_MAX_METADATA_BYTES (1 KB here)", tried=3,
         checked="422 metadata_too_large naming the setting; invalid in a batch")  # fmt: skip
    app = create_app(settings.model_copy(update={"max_metadata_bytes": 1024}))
    key = make_key(Scope.ingest)
    big = {"blob": "é" * 600}  # 1,200 bytes as UTF-8, 600 characters
    with TestClient(app) as client:
        response = client.post("/v1/feedback", json=ticket(1, metadata=big), headers=auth(key))
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "invalid_fields" and "metadata" in error["message"]
        assert error["details"][0]["type"] == "metadata_too_large"
        assert "TRIAGE_MAX_METADATA_BYTES" in error["details"][0]["message"]
        batch = {"items": [ticket(2, metadata=big), ticket(3, metadata={"blob": "a" * 900})]}
        answers = client.post("/v1/feedback", json=batch, headers=auth(key)).json()["items"]
    assert [a["result"] for a in answers] == ["invalid", "stored"]
    assert answers[0]["errors"][0]["field"] == "items.0.metadata"
    assert stored(engine) == [("zendesk", "T-3")]


# --- source-bound keys -----------------------------------------------------------------------


def test_api_feedback_source_bound_key_writes_only_its_sources(client, make_key, engine,  # type: ignore[no-untyped-def]
                                                                record_property):  # fmt: skip
    note(record_property, fault="a key bound to zendesk and intercom writing appstore", tried=2,
         checked="403; invalid source_not_allowed in a batch; unbound keys free")  # fmt: skip
    key = bound_key(engine, "zendesk", "intercom")
    assert client.post("/v1/feedback", json=ticket(1), headers=auth(key)).status_code == 202
    other = client.post("/v1/feedback", json=ticket(2, source="appstore"), headers=auth(key))
    assert other.status_code == 403
    assert "intercom, zendesk" in other.json()["error"]["message"]
    batch = {"items": [ticket(3, source="intercom"), ticket(4, source="appstore")]}
    answers = client.post("/v1/feedback", json=batch, headers=auth(key)).json()["items"]
    assert [a["result"] for a in answers] == ["stored", "invalid"]
    assert answers[1]["errors"][0]["type"] == "source_not_allowed"
    # An unbound key writes any source, as before.
    free = make_key(Scope.ingest)
    assert client.post("/v1/feedback", json=ticket(5, source="appstore"),
                       headers=auth(free)).status_code == 202  # fmt: skip
    assert stored(engine) == [("zendesk", "T-1"), ("intercom", "T-3"), ("appstore", "T-5")]


def test_api_feedback_source_binding_is_for_ingest_keys_only(engine):  # type: ignore[no-untyped-def]
    from triage.errors import InvalidInputError

    with db.session_scope(engine) as session, pytest.raises(InvalidInputError):
        store.create_api_key(session, scope=Scope.read, sources=["zendesk"])
    bound_key(engine, "zendesk", "zendesk")
    with db.session_scope(engine) as session:
        assert session.exec(select(ApiKey.sources)).one() == ["zendesk"]


# --- failed authentication is throttled -------------------------------------------------------


def test_api_auth_failures_are_throttled_per_address(settings, make_key, engine,  # type: ignore[no-untyped-def]
                                                     record_property):  # fmt: skip
    app = create_app(settings.model_copy(update={"auth_failures_per_minute": 60,
                                                 "auth_failures_burst": 5}))  # fmt: skip
    lookups = 0
    find = store.find_api_key

    def counting_find(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal lookups
        lookups += 1
        return find(*args, **kwargs)

    key = make_key(Scope.read)
    with TestClient(app) as client, pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "find_api_key", counting_find)
        statuses = [client.get("/v1/feedback", headers=auth(f"trg_guess{i}")).status_code
                    for i in range(40)]  # fmt: skip
        note(record_property, fault="40 guessed keys from one address (burst 5, 60/min)",
             tried=40, checked="5 are 401, then 429 with Retry-After and no lookup")  # fmt: skip
        assert statuses == [401] * 5 + [429] * 35
        assert lookups == 5
        throttled = client.get("/v1/feedback", headers=auth(key))
        assert throttled.status_code == 429 and throttled.headers["retry-after"] == "1"
        assert "failed authentications" in throttled.json()["error"]["message"]
        app.state.auth_failures.clock = lambda: 10**9  # a while later
        assert client.get("/v1/feedback", headers=auth(key)).status_code == 200
        # Successes cost nothing: a good key is never throttled by its own use.
        assert {client.get("/v1/feedback", headers=auth(key)).status_code
                for _ in range(20)} == {200}  # fmt: skip


def test_api_auth_failures_throttle_the_ui_sign_in_too(settings, make_key):  # type: ignore[no-untyped-def]
    import re

    app = create_app(settings.model_copy(update={"auth_failures_burst": 2}))
    csrf = re.compile(r'name="csrf_token" value="([^"]+)"')
    with TestClient(app) as client:
        form = client.get("/ui/login").text
        statuses = []
        for _ in range(4):
            answer = client.post(
                "/ui/login", data={"key": "trg_guess", "csrf_token": csrf.findall(form)[0]}
            )
            statuses.append(answer.status_code)
            form = answer.text
    assert statuses == [401, 401, 429, 429]
