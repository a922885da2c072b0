"""People's corrections leave a consistent state at once (``triage.corrections``), on SQLite and
PostgreSQL: a split-off issue is labelled, categorised and ranked from its own statements, a
merged issue is ``merged`` with its pointer, and a category trains only on confirmed statements."""

from __future__ import annotations

from tests.conftest import auth
from tests.db.test_pipeline import TOPICS
from tests.db.test_pipeline_steps import add_units, issue_of_units, recluster
from triage import corrections, db, store
from triage.models import Issue, IssueStatus, Scope


def mixed_issue(engine, settings) -> tuple[int, list[int], list[int]]:  # type: ignore[no-untyped-def]
    """One issue of export and numbers statements that a person named and categorised."""
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"])
        numbers = add_units(session, TOPICS["numbers"])
        recluster(session, settings, dict.fromkeys(export + numbers, 0))
        (issue_id,) = issue_of_units(session, export + numbers)
        store.update_issue(session, issue_id=issue_id, changes={"title": "Mixed bag",
                           "category": "ui"}, api_key_id=None, actor="test")  # fmt: skip
    return issue_id, export, numbers


def test_corrections_split_labels_categorises_and_ranks_the_new_issue_at_once(engine, settings):  # type: ignore[no-untyped-def]
    parent_id, export, numbers = mixed_issue(engine, settings)
    with db.session_scope(engine) as session:
        new = corrections.split(session, settings, issue_id=parent_id, unit_ids=numbers,
                                api_key_id=None, actor="test")  # fmt: skip
        new_id = new.id
    with db.session_scope(engine) as session:
        new, parent = session.get(Issue, new_id), session.get(Issue, parent_id)
        assert new is not None and parent is not None
        # The machine's own labels, from the numbers statements, not the parent's human ones.
        assert new.title and new.title != "Mixed bag"
        assert any("ledger" in k or "forecast" in k or "number" in k for k in new.keywords)
        assert new.quotes and all(q in TOPICS["numbers"] for q in new.quotes)
        assert new.priority > 0 and new.priority_breakdown and new.trend
        assert new.category is not None and new.evidence and new.centroid
        assert "category" not in new.human_fields and new.category_confidence != 1.0
        assert all(e.get("signal") != "human" for e in new.evidence)
        assert new.size == len(numbers)
        # The parent keeps what a person set and is ranked on what it has left.
        assert (parent.title, parent.category, parent.size) == ("Mixed bag", "ui", len(export))
        assert all(q in TOPICS["export"] for q in parent.quotes)
        assert [e["event"] for e in new.lineage] == ["split_from"]


def test_corrections_move_refreshes_both_issues(engine, settings):  # type: ignore[no-untyped-def]
    parent_id, export, numbers = mixed_issue(engine, settings)
    with db.session_scope(engine) as session:
        new = corrections.split(session, settings, issue_id=parent_id, unit_ids=numbers[:2],
                                api_key_id=None, actor="test")  # fmt: skip
        new_id = new.id
        corrections.move(session, settings, unit_ids=numbers[2:], issue_id=new_id,  # type: ignore[arg-type]
                         api_key_id=None, actor="test")  # fmt: skip
    with db.session_scope(engine) as session:
        new, parent = session.get(Issue, new_id), session.get(Issue, parent_id)
        assert new.size == len(numbers) and parent.size == len(export)  # type: ignore[union-attr]
        assert all(q in TOPICS["numbers"] for q in new.quotes)  # type: ignore[union-attr]
        assert all(q in TOPICS["export"] for q in parent.quotes)  # type: ignore[union-attr]


def test_corrections_merge_is_a_status_with_a_pointer_in_api_and_cli(  # type: ignore[no-untyped-def]
    engine, settings, client, make_key
):
    parent_id, _, numbers = mixed_issue(engine, settings)
    with db.session_scope(engine) as session:
        new_id = corrections.split(session, settings, issue_id=parent_id, unit_ids=numbers,
                                   api_key_id=None, actor="test").id  # fmt: skip
    admin = make_key(Scope.admin)
    merged = client.post(f"/v1/issues/{new_id}/merge", json={"into": parent_id},
                         headers=auth(admin))  # fmt: skip
    assert merged.status_code == 200 and merged.json()["size"] == 10
    gone = client.get(f"/v1/issues/{new_id}", headers=auth(admin)).json()
    assert (gone["status"], gone["merged_into"], gone["size"]) == ("merged", parent_id, 0)
    listed = client.get("/v1/issues?status=merged", headers=auth(admin)).json()
    assert [i["id"] for i in listed["items"]] == [new_id]
    assert new_id not in [
        i["id"] for i in client.get("/v1/issues", headers=auth(admin)).json()["items"]
    ]
    # Merged is what a merge does, never a status a person sets.
    refused = client.patch(
        f"/v1/issues/{parent_id}", json={"status": "merged"}, headers=auth(admin)
    )
    assert refused.status_code == 422
    with db.session_scope(engine) as session:
        assert session.get(Issue, new_id).status == IssueStatus.merged  # type: ignore[union-attr]
        # The target is refreshed with its new members.
        assert session.get(Issue, parent_id).quotes  # type: ignore[union-attr]

    from typer.testing import CliRunner

    from triage.cli.app import app

    shown = CliRunner().invoke(app, ["issue", str(new_id)])
    assert shown.exit_code == 0, shown.output
    assert "status merged" in shown.output and f"merged into issue {parent_id}" in shown.output


def test_corrections_category_trains_only_on_confirmed_statements(
    engine, settings, client, make_key
):  # type: ignore[no-untyped-def]
    issue_id, _, numbers = mixed_issue(engine, settings)
    admin = make_key(Scope.admin)
    with db.session_scope(engine) as session:
        # The person set a category on the whole mixed issue and confirmed nothing.
        assert store.corrected_units(session) == []

    def patch(body: dict) -> int:
        return client.patch(f"/v1/issues/{issue_id}", json=body, headers=auth(admin)).status_code

    assert patch({"category": "data", "confirm_units": numbers[:2]}) == 200
    with db.session_scope(engine) as session:
        assert store.corrected_units(session) == [(t, "data") for t in TOPICS["numbers"][:2]]
    assert patch({"confirm_units": numbers}) == 422  # confirmed as what?
    assert patch({"category": "data", "confirm_units": [999999]}) == 422  # not a member
    assert patch({"category": "ui", "confirm_units": "all"}) == 200
    with db.session_scope(engine) as session:
        labels = dict(store.corrected_units(session))
        assert len(labels) == 10 and set(labels.values()) == {"ui"}
        entries = store.audit_entries(session, target_type="issue", target_id=str(issue_id))
        assert [e.action for e in entries].count("issue.confirm_units") == 2
    # Labels stay on the statements wherever they move.
    with db.session_scope(engine) as session:
        corrections.split(session, settings, issue_id=issue_id, unit_ids=numbers,
                          api_key_id=None, actor="test")  # fmt: skip
    with db.session_scope(engine) as session:
        assert len(store.corrected_units(session)) == 10


def test_corrections_split_through_the_api_answers_with_the_labelled_issue(  # type: ignore[no-untyped-def]
    engine, settings, client, make_key
):
    parent_id, _, numbers = mixed_issue(engine, settings)
    admin = make_key(Scope.admin)
    response = client.post(f"/v1/issues/{parent_id}/split", json={"unit_ids": numbers},
                           headers=auth(admin))  # fmt: skip
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["title"] and new["title"] != "Mixed bag" and new["priority"] > 0
    assert new["category"] and new["size"] == len(numbers) and new["merged_into"] is None
