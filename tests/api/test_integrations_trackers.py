"""Issue 15, "Issues to the tracker": an issue exported to GitHub, Jira and Linear through their
real APIs, here a loopback server that checks each request as the vendor documents it and
answers with the vendor's documented shape (``fixtures/integrations/``); once per tracker."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import delete
from typer.testing import CliRunner

from tests.api.test_api_issues import seed
from tests.conftest import auth
from triage import db
from triage.cli import app
from triage.errors import ConflictError
from triage.models import Issue, Scope, Tracker, utcnow
from triage.store.exports import STARTED, claim_issue_export

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "integrations"
GITHUB_TOKEN = "github_pat_test_0123456789"
JIRA_TOKEN = "ATATT3x-test-token"
LINEAR_KEY = "lin_api_test0123456789"
TEAM = "9cfb482a-81e3-4154-b5b9-2c805e70a02d"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTracker:
    """One loopback HTTP server standing in for all three trackers: records every request and
    answers each path with the next queued (status, body), else the path's default."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    defaults: dict[str, tuple[int, Any]] = field(default_factory=dict)
    queued: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)


@pytest.fixture
def fake() -> Iterator[FakeTracker]:
    state = FakeTracker()
    for name in ("github_issue_create", "jira_issue_create", "linear_issue_create"):
        sample = fixture(name)
        state.defaults[sample["request"]["path"]] = (
            sample["response"]["status"],
            sample["response"]["body"],
        )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Request("POST", self.path, headers, json.loads(raw)))
            queue = state.queued.get(self.path) or []
            status, body = queue.pop(0) if queue else state.defaults.get(self.path, (404, {}))
            # Slack answers its webhooks in plain text ("ok", "invalid_blocks").
            plain = isinstance(body, str)
            content = body.encode() if plain else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if plain else "application/json")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def tracker_settings(fake: FakeTracker) -> dict[str, Any]:
    return {
        "github_api_url": fake.url,
        "github_repo": "acme/assistant",
        "github_token": SecretStr(GITHUB_TOKEN),
        "jira_api_url": fake.url,
        "jira_email": "bot@example.com",
        "jira_token": SecretStr(JIRA_TOKEN),
        "jira_project_key": "ENG",
        "linear_api_url": f"{fake.url}/graphql",
        "linear_token": SecretStr(LINEAR_KEY),
        "linear_team_id": TEAM,
        "digest_base_url": "https://triage.example.com",
        "tracker_timeout_seconds": 5.0,
    }


@pytest.fixture
def api(settings, fake):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app(settings.model_copy(update=tracker_settings(fake)))) as client:
        yield client


def seeded_issue(engine, title: str = "Summary is in the wrong language") -> int:  # type: ignore[no-untyped-def]
    [issue_id], _ = seed(engine, sizes=(2,))
    with db.session_scope(engine) as session:
        issue = session.get(Issue, issue_id)
        issue.title = title
        issue.category, issue.category_confidence = "model", 0.82
        issue.priority = 0.64
        issue.priority_breakdown = {"reach": 0.21, "trend": 0.18, "note": "not a number"}
        issue.evidence = [{"reason": "62% of linked outputs come from summarizer 2.3.0"}]
        issue.quotes = ["The summary came back in German, @support look #12 <PERSON> saw it"]
        session.add(issue)
    return issue_id


def export(api, issue_id: int, tracker: str, key: str):  # type: ignore[no-untyped-def]
    return api.post(f"/v1/issues/{issue_id}/export", json={"tracker": tracker}, headers=auth(key))


def text_nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "text":
            yield node
        for child in node.get("content", []):
            yield from text_nodes(child)


def check_adf(node: dict[str, Any], parent: str = "") -> None:
    """The Atlassian Document Format rules this description uses: a version-1 ``doc`` at the
    top; lists hold list items, list items and blockquotes hold paragraphs; text non-empty."""
    kind = node["type"]
    allowed = {
        "": {"doc"},
        "doc": {"paragraph", "heading", "bulletList", "blockquote"},
        "bulletList": {"listItem"},
        "listItem": {"paragraph"},
        "blockquote": {"paragraph"},
        "paragraph": {"text"},
        "heading": {"text"},
    }
    assert kind in allowed[parent], f"{kind} inside {parent or 'the top'}"
    if kind == "doc":
        assert node["version"] == 1
    if kind == "heading":
        assert 1 <= node["attrs"]["level"] <= 6
    if kind == "text":
        assert isinstance(node["text"], str) and node["text"]
        for mark in node.get("marks", []):
            assert mark["type"] == "link" and mark["attrs"]["href"].startswith("https://")
        return
    assert node["content"], f"an empty {kind}"
    for child in node["content"]:
        check_adf(child, kind)


def test_trackers_github_request_as_documented_and_idempotent(api, fake, make_key, engine):  # type: ignore[no-untyped-def]
    issue_id = seeded_issue(engine)
    admin, read = make_key(Scope.admin), make_key(Scope.read)
    assert export(api, issue_id, "github", read).status_code == 403
    response = export(api, issue_id, "github", admin)
    assert response.status_code == 201, response.text
    body = response.json()
    sample = fixture("github_issue_create")
    assert body["url"] == sample["response"]["body"]["html_url"]
    assert (body["key"], body["ticket_id"]) == ("acme/assistant#1347", "1347") and body["created"]

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", sample["request"]["path"])
    assert sent.headers["accept"] == "application/vnd.github+json"
    assert sent.headers["authorization"] == f"Bearer {GITHUB_TOKEN}"
    assert sent.headers["x-github-api-version"] == "2022-11-28"
    assert sent.headers["content-type"] == "application/json"
    assert set(sent.body) == set(sample["request"]["body"]) == {"title", "body"}
    assert sent.body["title"] == "Summary is in the wrong language"
    markdown = sent.body["body"]
    for part in ("Category: model (82% confidence)", "Priority: 0.64", "reach 0.21 + trend 0.18",
                 "summarizer 2.3.0", "The summary came back in German",
                 "(https://triage.example.com/v1/issues/"):  # fmt: skip
        assert part in markdown
    # A customer's "@support" must not notify anyone, nor "#12" link another issue.
    assert "@support" not in markdown and "&#64;support" in markdown
    assert "#12" not in markdown and "\\<PERSON\\>" in markdown

    again = export(api, issue_id, "github", admin)
    assert again.status_code == 200 and again.json()["url"] == body["url"]
    assert again.json()["created"] is False and len(fake.requests) == 1
    shown = api.get(f"/v1/issues/{issue_id}", headers=auth(read)).json()
    assert shown["external_url"] == body["url"]
    assert [e["event"] for e in shown["lineage"]] == ["exported"]


def test_trackers_jira_basic_auth_and_adf_description(api, fake, make_key, engine):  # type: ignore[no-untyped-def]
    issue_id = seeded_issue(engine)
    response = export(api, issue_id, "jira", make_key(Scope.admin))
    assert response.status_code == 201, response.text
    assert response.json()["url"] == f"{fake.url}/browse/ENG-24"
    assert response.json()["key"] == "ENG-24" and response.json()["ticket_id"] == "10000"

    [sent] = fake.requests
    sample = fixture("jira_issue_create")["request"]
    assert sent.path == sample["path"] == "/rest/api/3/issue"
    kind, _, encoded = sent.headers["authorization"].partition(" ")
    assert kind == "Basic" and base64.b64decode(encoded).decode() == f"bot@example.com:{JIRA_TOKEN}"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    fields = sent.body["fields"]
    assert set(sent.body) == {"fields"} and set(fields) == set(sample["body"]["fields"])
    assert fields["project"] == {"key": "ENG"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "Summary is in the wrong language"
    check_adf(fields["description"])
    check_adf(sample["body"]["fields"]["description"])  # the fixture obeys the same rules
    texts = [n["text"] for n in text_nodes(fields["description"])]
    assert "Category: model (82% confidence)" in texts
    # ADF text is plain: customer words go in as they are, nothing escaped.
    assert any(t.startswith("The summary came back in German, @support") for t in texts)
    [link] = [n for n in text_nodes(fields["description"]) if n.get("marks")]
    assert link["marks"][0]["attrs"]["href"] == f"https://triage.example.com/v1/issues/{issue_id}"


def test_trackers_linear_graphql_mutation_and_auth_header(settings, fake, engine):  # type: ignore[no-untyped-def]
    from triage.integrations.trackers import tracker_from_settings
    from triage.integrations.trackers.export import export_issue

    issue_id = seeded_issue(engine)
    configured = settings.model_copy(update=tracker_settings(fake))
    result = export_issue(
        engine,
        issue_id=issue_id,
        tracker=tracker_from_settings(Tracker.linear, configured),
        redact=lambda records: [dict(r) for r in records],
        base_url=None,
        timeout=5.0,
        actor="test",
    )
    sample = fixture("linear_issue_create")
    assert result.url == sample["response"]["body"]["data"]["issueCreate"]["issue"]["url"]
    assert result.key == "ENG-42"
    [sent] = fake.requests
    assert sent.path == "/graphql"
    assert sent.headers["authorization"] == LINEAR_KEY  # a personal key: no "Bearer"
    assert sent.headers["content-type"] == "application/json"
    assert set(sent.body) == {"query", "variables"}
    assert sent.body["query"] == sample["request"]["body"]["query"]
    query = " ".join(sent.body["query"].split())
    assert query.startswith("mutation IssueCreate($input: IssueCreateInput!)")
    assert "issueCreate(input: $input) { success issue { id identifier url } }" in query
    variables = sent.body["variables"]["input"]
    assert set(variables) == set(sample["request"]["body"]["variables"]["input"])
    assert variables["teamId"] == TEAM and variables["title"] == "Summary is in the wrong language"
    assert f"issue {issue_id} in triage" in variables["description"]

    # An OAuth access token goes after "Bearer".
    oauth = tracker_from_settings(
        Tracker.linear, configured.model_copy(update={"linear_token": SecretStr("oauth-token")})
    )
    with db.session_scope(engine) as session:
        second = Issue(title="Second")
        session.add(second)
        session.flush()
        other = second.id
    export_issue(engine, issue_id=other, tracker=oauth, redact=lambda r: [dict(x) for x in r],
                 base_url=None, timeout=5.0, actor="test")  # fmt: skip
    assert fake.requests[-1].headers["authorization"] == "Bearer oauth-token"


def test_trackers_refusal_stores_nothing_and_the_next_export_works(api, fake, make_key, engine):  # type: ignore[no-untyped-def]
    issue_id = seeded_issue(engine)
    admin = make_key(Scope.admin)
    refused = fixture("linear_issue_create")["refused"]
    fake.queued["/graphql"] = [(refused["status"], refused["body"])]
    response = export(api, issue_id, "linear", admin)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "tracker_failed" and "teamId must be a UUID" in error["message"]
    fake.queued["/repos/acme/assistant/issues"] = [(401, {"message": "Bad credentials"})]
    error = export(api, issue_id, "github", admin).json()["error"]
    assert "HTTP 401: Bad credentials" in error["message"] and GITHUB_TOKEN not in error["message"]
    with db.session_scope(engine) as session:
        issue = session.get(Issue, issue_id)
        assert issue.external_url is None and issue.lineage == []  # claims released
    assert export(api, issue_id, "linear", admin).status_code == 201
    assert export(api, issue_id, "github", admin).status_code == 201
    with db.session_scope(engine) as session:
        issue = session.get(Issue, issue_id)
        # The first ticket is the issue's link; both stay in its lineage.
        assert issue.external_url.startswith("https://linear.app/")
        assert sorted(e["tracker"] for e in issue.lineage) == ["github", "linear"]


def test_trackers_unconfigured_and_unreachable(settings, client, make_key, engine):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from api.main import create_app

    issue_id = seeded_issue(engine)
    admin = make_key(Scope.admin)
    response = export(client, issue_id, "jira", admin)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "tracker_not_configured"
    assert "TRIAGE_JIRA_API_URL" in error["message"] and "TRIAGE_JIRA_TOKEN" in error["message"]
    assert export(client, issue_id, "gitlab", admin).status_code == 422
    down_url = {"github_api_url": "http://127.0.0.1:9", "github_repo": "a/b"}
    closed = settings.model_copy(update={**down_url, "github_token": SecretStr("t")})
    with TestClient(create_app(closed)) as down:
        response = export(down, issue_id, "github", admin)
    assert response.status_code == 502 and "Could not reach GitHub" in response.text
    assert export(client, 999, "github", admin).status_code in (404, 422)


def test_trackers_person_typed_title_is_redacted(api, fake, make_key, engine):  # type: ignore[no-untyped-def]
    issue_id = seeded_issue(engine, title="Export fails for maria.lopez@example.com")
    assert export(api, issue_id, "github", make_key(Scope.admin)).status_code == 201
    title = fake.requests[0].body["title"]
    assert "maria.lopez@example.com" not in title and title.startswith("Export fails for <")


def test_trackers_concurrent_export_waits_for_the_claim(settings, fake, engine):  # type: ignore[no-untyped-def]
    from triage.integrations.trackers import tracker_from_settings
    from triage.integrations.trackers.export import export_issue

    issue_id = seeded_issue(engine)
    configured = settings.model_copy(update=tracker_settings(fake))
    tracker = tracker_from_settings(Tracker.github, configured)
    now, lease = utcnow(), timedelta(minutes=1)
    with db.session_scope(engine, write_lock=True) as session:
        claim_issue_export(session, issue_id=issue_id, tracker="github", claim="other",
                           at=now - timedelta(seconds=5), lease=lease)  # fmt: skip
    kwargs = {"issue_id": issue_id, "tracker": tracker, "redact": lambda r: [dict(x) for x in r],
              "base_url": None, "timeout": 1.0, "actor": "test"}  # fmt: skip
    with pytest.raises(ConflictError, match="being exported to github"):
        export_issue(engine, **kwargs)
    assert fake.requests == []
    # A claim older than its lease belongs to a process that died: the next export proceeds.
    with db.session_scope(engine, write_lock=True) as session:
        issue = session.get(Issue, issue_id)
        issue.lineage = [{**issue.lineage[0], "at": (now - timedelta(hours=1)).isoformat()}]
        session.add(issue)
    assert export_issue(engine, **kwargs).created
    with db.session_scope(engine) as session:
        events = session.get(Issue, issue_id).lineage
    assert [e["event"] for e in events] == ["exported"] and STARTED not in str(events)


def test_trackers_cli_export_and_issue_list_show_the_link(settings, fake, engine, monkeypatch):  # type: ignore[no-untyped-def]
    from triage.config import get_settings

    issue_id = seeded_issue(engine)
    monkeypatch.setenv("TRIAGE_GITHUB_API_URL", fake.url)
    monkeypatch.setenv("TRIAGE_GITHUB_REPO", "acme/assistant")
    monkeypatch.setenv("TRIAGE_GITHUB_TOKEN", GITHUB_TOKEN)
    get_settings.cache_clear()
    runner = CliRunner()
    url = fixture("github_issue_create")["response"]["body"]["html_url"]
    first = runner.invoke(app, ["issues", "export", str(issue_id), "--to", "github"])
    assert first.exit_code == 0, first.stderr
    assert first.stdout.strip() == url and "created acme/assistant#1347" in first.stderr
    second = runner.invoke(app, ["issues", "export", str(issue_id), "--to", "github"])
    assert second.stdout.strip() == url and "already exported" in second.stderr
    assert len(fake.requests) == 1
    listed = runner.invoke(app, ["issues"])
    assert listed.exit_code == 0 and f"#{issue_id} ticket: {url}" in listed.stdout
    rows = json.loads(runner.invoke(app, ["issues", "--format", "json"]).stdout)
    assert rows[0]["external_url"] == url
    unconfigured = runner.invoke(app, ["issues", "export", str(issue_id), "--to", "jira"])
    assert unconfigured.exit_code == 1 and "TRIAGE_JIRA_API_URL" in unconfigured.stderr


def test_trackers_digest_links_each_top_issue_to_its_ticket(engine, settings):  # type: ignore[no-untyped-def]
    from tests.db.test_digest import collect
    from tests.db.test_digest import seed as seed_history
    from triage import digest
    from triage.models import Digest

    with db.session_scope(engine) as session:
        session.execute(delete(Digest))
    ids = seed_history(engine)
    url = "https://github.com/acme/assistant/issues/1347"
    with db.session_scope(engine) as session:
        for issue_id, link in ((ids["export"], url), (ids["invent"], "javascript:alert(1)")):
            issue = session.get(Issue, issue_id)
            issue.external_url = link
            session.add(issue)
    data = collect(engine, settings)
    text = digest.render_markdown(data)
    assert f"[ticket](<{url}>)" in text and "javascript:" not in text
    page = digest.render_html(data)
    assert f'<a href="{url}">ticket</a>' in page and "javascript:" not in page
