"""The web app under /ui/, through TestClient on SQLite and PostgreSQL: sign-in, CSRF, the pages,
and corrections through forms that the API then shows."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.test_api_issues import seed
from tests.api.test_integrations_trackers import fake, tracker_settings  # noqa: F401 (fixture)
from tests.conftest import auth
from triage.models import Scope

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client: TestClient, secret: str) -> str:
    """Sign in through the form; the session's CSRF token, read off the issues page."""
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"key": secret, "csrf_token": csrf_of(form.text), "next": "/ui/issues"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/ui/issues"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    return csrf_of(client.get("/ui/issues").text)


def test_ui_login_good_and_bad_key(client, make_key):  # type: ignore[no-untyped-def]
    assert (
        client.get("/ui/issues", follow_redirects=False)
        .headers["location"]
        .startswith("/ui/login?next=")
    )
    form = client.get("/ui/login")
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    assert form.headers["x-content-type-options"] == "nosniff"
    bad = client.post("/ui/login", data={"key": "trg_nope", "csrf_token": csrf_of(form.text)})
    assert bad.status_code == 401 and "unknown or revoked" in bad.text
    ingest = client.post(
        "/ui/login", data={"key": make_key(Scope.ingest), "csrf_token": csrf_of(bad.text)}
    )
    assert ingest.status_code == 401
    # The sign-in form has its own CSRF token, before there is a session.
    assert client.post("/ui/login", data={"key": make_key(Scope.read)}).status_code == 403
    token = sign_in(client, make_key(Scope.read))
    assert client.get("/ui/issues").status_code == 200
    out = client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/ui/issues", follow_redirects=False).status_code == 303


def test_ui_login_refuses_open_redirects(client, make_key):  # type: ignore[no-untyped-def]
    form = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={
            "key": make_key(Scope.read),
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/ui/",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/ui/issues"


def test_ui_issues_list_filters_and_hides_ignored(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, _ = seed(engine)
    admin = make_key(Scope.admin)
    client.patch(f"/v1/issues/{ids[1]}", json={"status": "ignored"}, headers=auth(admin))
    sign_in(client, make_key(Scope.read))
    page = client.get("/ui/issues").text
    assert f"/ui/issues/{ids[0]}" in page and f"/ui/issues/{ids[1]}" not in page
    assert '<svg class="sparkline"' in page
    shown = client.get("/ui/issues?status=ignored").text
    assert f"/ui/issues/{ids[1]}" in shown and f"/ui/issues/{ids[0]}" not in shown
    assert "Issue 0" not in client.get("/ui/issues?category=data").text
    assert "Issue 0" in client.get("/ui/issues?category=&model=&q=").text
    assert "Issue 0" in client.get("/ui/issues?q=issue+0&sort=trend").text
    assert client.get("/ui/issues?sort=size").status_code == 200
    assert client.get("/ui/issues?sort=newest&assignee=nobody").status_code == 200


def test_ui_issue_page_for_a_read_key_has_no_correction_forms(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, units = seed(engine)
    sign_in(client, make_key(Scope.read))
    page = client.get(f"/ui/issues/{ids[0]}")
    assert page.status_code == 200 and "Why this category" in page.text
    assert f"unit {units[0][0]}" in page.text
    assert f'action="/ui/issues/{ids[0]}/category"' not in page.text
    assert client.get("/ui/issues/999").status_code == 404


def test_ui_read_key_cannot_correct(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, _ = seed(engine)
    token = sign_in(client, make_key(Scope.read))
    response = client.post(
        f"/ui/issues/{ids[0]}/category", data={"category": "data", "csrf_token": token}
    )
    assert response.status_code == 403
    assert client.get("/ui/keys").status_code == 403


def test_ui_correction_without_csrf_is_refused(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, _ = seed(engine)
    sign_in(client, make_key(Scope.admin))
    for data in ({"category": "data"}, {"category": "data", "csrf_token": "forged"}):
        response = client.post(f"/ui/issues/{ids[0]}/category", data=data)
        assert response.status_code == 403
    assert client.post("/ui/keys", data={"scope": "admin"}).status_code == 403


def test_ui_corrections_show_in_the_api(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, units = seed(engine, sizes=(3, 2, 2))
    admin = make_key(Scope.admin)
    token = sign_in(client, admin)
    page = client.get(f"/ui/issues/{ids[0]}").text
    assert f'action="/ui/issues/{ids[0]}/category"' in page and "csrf" in page

    def post(action: str, **data: object) -> str:
        response = client.post(
            f"/ui/issues/{ids[0]}/{action}", data={**data, "csrf_token": token},
            follow_redirects=False,
        )  # fmt: skip
        assert response.status_code == 303, response.text
        assert response.headers["location"].startswith(f"/ui/issues/{ids[0]}?done=")
        return response.headers["location"]

    post("category", category="data")
    post("title", title="Export fails")
    post("status", status="acknowledged")
    post("assignee", assignee="sam")
    issue = client.get(f"/v1/issues/{ids[0]}", headers=auth(admin)).json()
    assert (issue["category"], issue["title"], issue["status"], issue["assignee"]) == (
        "data", "Export fails", "acknowledged", "sam",
    )  # fmt: skip

    post("split", unit_id=units[0][:2])
    members = client.get(f"/v1/issues/{ids[0]}/feedback", headers=auth(admin)).json()
    assert members["total"] == 1
    assert [u["unit_id"] for u in members["items"][0]["units"]] == [units[0][2]]

    post("move", unit_id=[units[0][2]], to=ids[2])
    assert client.get(f"/v1/issues/{ids[2]}", headers=auth(admin)).json()["size"] == 3

    response = client.post(
        f"/ui/issues/{ids[1]}/merge", data={"into": ids[2], "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303
    listed = client.get("/v1/issues", headers=auth(admin)).json()["items"]
    assert ids[1] not in [i["id"] for i in listed]
    assert client.get(f"/v1/issues/{ids[2]}", headers=auth(admin)).json()["size"] == 5
    # A refused correction comes back as a message on the page, not an error body.
    again = client.post(
        f"/ui/issues/{ids[1]}/merge", data={"into": ids[2], "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert "error=" in again.headers["location"]
    audit = client.get(f"/ui/issues/{ids[0]}").text
    assert "issue.update" in audit and "Export fails" in audit


def test_ui_issue_feedback_api_is_paged(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, units = seed(engine)
    read = make_key(Scope.read)
    first = client.get(f"/v1/issues/{ids[0]}/feedback?limit=2", headers=auth(read)).json()
    assert first["total"] == 3 and len(first["items"]) == 2
    rest = client.get(f"/v1/issues/{ids[0]}/feedback?offset=2", headers=auth(read)).json()
    seen = {u["unit_id"] for item in first["items"] + rest["items"] for u in item["units"]}
    assert seen == set(units[0])
    assert client.get("/v1/issues/999/feedback", headers=auth(read)).status_code == 404


def test_ui_feedback_digests_and_keys_pages(client, make_key, engine):  # type: ignore[no-untyped-def]
    seed(engine)
    token = sign_in(client, make_key(Scope.admin))
    assert "Ticket" in client.get("/ui/feedback?q=t&status=processed").text
    assert client.get("/ui/feedback?status=&source=").status_code == 200
    assert client.get("/ui/feedback?source=s").status_code == 200
    assert "No digest is stored yet" in client.get("/ui/digests").text
    assert client.get("/ui/digests/2026-W01").status_code == 404
    created = client.post("/ui/keys", data={"scope": "read", "name": "bob", "csrf_token": token})
    assert created.status_code == 200 and "shown only this once" in created.text
    secret = re.search(r"(trg_[A-Za-z0-9_-]+)", created.text).group(1)  # type: ignore[union-attr]
    assert client.get("/v1/issues", headers=auth(secret)).status_code == 200
    key_id = int(re.findall(r'action="/ui/keys/(\d+)/revoke"', created.text)[-1])
    revoked = client.post(f"/ui/keys/{key_id}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert client.get("/v1/issues", headers=auth(secret)).status_code == 401


def test_ui_merge_target_is_found_by_title_without_javascript(client, make_key, engine):  # type: ignore[no-untyped-def]
    ids, _ = seed(engine, sizes=(3, 2, 2))
    admin = make_key(Scope.admin)
    token = sign_in(client, admin)
    page = client.get(f"/ui/issues/{ids[0]}?merge_q=issue+2").text
    assert 'name="merge_q"' in page
    assert f'name="into" value="{ids[2]}"' in page
    assert f'name="into" value="{ids[0]}"' not in page  # never into itself
    assert "No other issue matches" in client.get(f"/ui/issues/{ids[0]}?merge_q=zzz").text
    response = client.post(
        f"/ui/issues/{ids[0]}/merge", data={"into": ids[2], "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303 and "done=Merged" in response.headers["location"]
    merged = client.get(f"/v1/issues/{ids[0]}", headers=auth(admin)).json()
    assert (merged["status"], merged["merged_into"]) == ("merged", ids[2])
    page = client.get(f"/ui/issues/{ids[0]}").text
    assert "status-merged" in page and f'href="/ui/issues/{ids[2]}">issue {ids[2]}' in page
    # A read key sees no merge search.
    client.cookies.clear()
    sign_in(client, make_key(Scope.read))
    assert 'name="merge_q"' not in client.get(f"/ui/issues/{ids[1]}").text


def test_ui_category_trains_only_on_the_statements_ticked(client, make_key, engine):  # type: ignore[no-untyped-def]
    from triage import db, store

    ids, units = seed(engine)
    token = sign_in(client, make_key(Scope.admin))

    def post(**data: object) -> str:
        response = client.post(
            f"/ui/issues/{ids[0]}/category", data={**data, "csrf_token": token},
            follow_redirects=False,
        )  # fmt: skip
        assert response.status_code == 303
        return response.headers["location"]

    post(category="data")
    with db.session_scope(engine) as session:
        assert store.corrected_units(session) == []
    assert "error=" in post(category="data", confirm="selected")  # nothing ticked
    assert "training+examples" in post(category="data", confirm="selected", unit_id=units[0][:1])
    with db.session_scope(engine) as session:
        assert len(store.corrected_units(session)) == 1
    post(category="model", confirm="all")
    with db.session_scope(engine) as session:
        assert [c for _, c in store.corrected_units(session)] == ["model"] * 3


def test_ui_failed_ticket_has_a_retry_button(client, make_key, engine):  # type: ignore[no-untyped-def]
    from triage import db
    from triage.models import Feedback

    seed(engine)
    with db.session_scope(engine) as session:
        ticket = Feedback(source="s", external_id="bad", text="x", text_sha256="1" * 64,
                          status="failed", last_error="preprocess failed: boom")  # fmt: skip
        session.add(ticket)
        session.flush()
        ticket_id = ticket.id
    token = sign_in(client, make_key(Scope.admin))
    page = client.get("/ui/feedback?status=failed").text
    assert f'action="/ui/feedback/{ticket_id}/retry"' in page and "boom" in page
    assert client.post(f"/ui/feedback/{ticket_id}/retry", data={}).status_code == 403  # no CSRF
    response = client.post(f"/ui/feedback/{ticket_id}/retry", data={"csrf_token": token},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303 and "done=" in response.headers["location"]
    with db.session_scope(engine) as session:
        assert session.get(Feedback, ticket_id).status == "pending"  # type: ignore[union-attr]
    again = client.post(f"/ui/feedback/{ticket_id}/retry", data={"csrf_token": token})
    assert "is not failed" in again.text
    client.cookies.clear()
    sign_in(client, make_key(Scope.read))
    assert "/retry" not in client.get("/ui/feedback").text


def test_ui_send_to_tracker_when_one_is_configured(settings, fake, make_key, engine, client):  # type: ignore[no-untyped-def]  # noqa: F811
    from fastapi.testclient import TestClient

    from api.main import create_app

    ids, _ = seed(engine)
    admin = make_key(Scope.admin)
    sign_in(client, admin)
    assert "Send to tracker" not in client.get(f"/ui/issues/{ids[0]}").text  # none configured
    app = create_app(settings.model_copy(update=tracker_settings(fake)))
    with TestClient(app) as configured:
        token = sign_in(configured, admin)
        page = configured.get(f"/ui/issues/{ids[0]}").text
        assert f'action="/ui/issues/{ids[0]}/export"' in page and "Send to tracker" in page
        response = configured.post(f"/ui/issues/{ids[0]}/export",
                                   data={"tracker": "github", "csrf_token": token},
                                   follow_redirects=False)  # fmt: skip
        assert response.status_code == 303 and "done=Sent+to+github" in response.headers["location"]
        again = configured.post(f"/ui/issues/{ids[0]}/export",
                                data={"tracker": "github", "csrf_token": token})  # fmt: skip
        assert "Already in github" in again.text
        issue = configured.get(f"/v1/issues/{ids[0]}", headers=auth(admin)).json()
        assert issue["external_url"].startswith("https://")
    assert len(fake.requests) == 1
