"""POST /v1/model-outputs: one output or a batch, numeric ids and unknown fields, as /v1/feedback
takes them (issue 15)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import select

from tests.conftest import auth
from triage import db
from triage.models import ModelOutput, Scope


def output(output_id: str = "o-1", **extra: Any) -> dict[str, Any]:
    return {"output_id": output_id, "model": "summarizer", "model_version": "2.3.0",
            "output": "Summary", "confidence": 0.9, **extra}  # fmt: skip


def rows(engine) -> list[ModelOutput]:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return list(session.exec(select(ModelOutput).order_by(ModelOutput.id)).all())  # type: ignore[arg-type]


def count(engine) -> int:  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(ModelOutput)).one()


def test_api_model_outputs_single_object_is_stored_idempotently(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = auth(make_key(Scope.ingest))
    first = client.post("/v1/model-outputs", json=output(), headers=key)
    assert first.status_code == 202, first.text
    assert first.json() == {"id": 1, "output_id": "o-1", "duplicate": False, "warnings": []}
    again = client.post("/v1/model-outputs", json=output(), headers=key).json()
    assert again["id"] == 1 and again["duplicate"] is True
    # A single output and the same in a batch are the same output.
    batch = client.post("/v1/model-outputs", json={"items": [output()]}, headers=key).json()
    assert batch["items"][0]["id"] == 1 and batch["items"][0]["duplicate"] is True
    assert batch["warnings"] == []

    changed = client.post("/v1/model-outputs", json=output(output="Other"), headers=key)
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "conflict"
    bad = client.post("/v1/model-outputs", json=output("o-2", confidence=1.5), headers=key)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "confidence"
    assert count(engine) == 1


def test_api_model_outputs_numeric_ids_are_stored_as_text(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = auth(make_key(Scope.ingest))
    sent = output(8447388090494, user_id=35436, session_id=7)  # type: ignore[arg-type]
    answer = client.post("/v1/model-outputs", json=sent, headers=key)
    assert answer.status_code == 202, answer.text
    assert answer.json()["output_id"] == "8447388090494"
    [row] = rows(engine)
    assert (row.output_id, row.user_id, row.session_id) == ("8447388090494", "35436", "7")
    # The same output sent with its ids as text is a retry, not a conflict.
    retry = output("8447388090494", user_id="35436", session_id="7")
    assert client.post("/v1/model-outputs", json=retry, headers=key).json()["duplicate"] is True


def test_api_model_outputs_unknown_fields_warn_or_strict_422(client, make_key, engine):  # type: ignore[no-untyped-def]
    key = auth(make_key(Scope.ingest))
    typo = output(model_versoin="2.4.0")
    strict = client.post("/v1/model-outputs?strict=true", json=typo, headers=key)
    assert strict.status_code == 422
    error = strict.json()["error"]
    assert error["code"] == "unknown_fields" and error["details"][0]["field"] == "model_versoin"
    batch = {"items": [output(), output("o-2", sesion_id="s")], "extra": 1}
    strict = client.post("/v1/model-outputs?strict=true", json=batch, headers=key)
    assert strict.status_code == 422 and count(engine) == 0
    assert [d["field"] for d in strict.json()["error"]["details"]] == ["extra", "items.1.sesion_id"]

    answer = client.post("/v1/model-outputs", json=typo, headers=key)
    assert answer.status_code == 202
    hint = "Unknown field, ignored; did you mean 'model_version'?"
    assert answer.json()["warnings"] == [{"field": "model_versoin", "message": hint}]
    answer = client.post("/v1/model-outputs", json=batch, headers=key).json()
    assert answer["items"][0]["warnings"] == []
    assert answer["items"][1]["warnings"][0]["field"] == "items.1.sesion_id"
    assert "did you mean 'session_id'?" in answer["items"][1]["warnings"][0]["message"]
    assert answer["warnings"][0]["field"] == "extra"
    # Unknown fields are not stored, and do not make a retry without them a conflict.
    assert [r.output_id for r in rows(engine)] == ["o-1", "o-2"]
    assert client.post("/v1/model-outputs", json=output("o-2"), headers=key).json()["duplicate"]
