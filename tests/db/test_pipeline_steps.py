"""The bookkeeping steps of ``triage.pipeline``, one at a time, on hand-built units: fake-embedder
vectors and clusterings written by hand, so each test shows what one step does to the database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlmodel import Session, select

from tests.db.test_pipeline import TOPICS
from triage import cluster, db, digest, store
from triage.categorize import (
    CATEGORIES,
    DEFAULT_CUES,
    Categorizer,
    CategoryDecision,
    CueLexicon,
    load_categorizer,
)
from triage.cli.issues import issue_rows
from triage.embed import FakeEmbedder, text_hash, vector_to_bytes
from triage.link import LinkParams
from triage.models import (
    Feedback,
    FeedbackCreate,
    Issue,
    IssueStatus,
    ModelOutputCreate,
    Unit,
    utcnow,
)
from triage.pipeline import (
    DiagnoseParams,
    LabelParams,
    MembershipParams,
    UnitMatrix,
    assign_new,
    diagnose,
    link_pending,
    load_units,
    recluster_issues,
    relabel,
)
from triage.pipeline.diagnose import for_embedder, judge_tickets
from triage.pipeline.memberships import issue_of
from triage.pipeline.tickets import aggregate

EMBEDDER = FakeEmbedder()
_external_ids = itertools.count()


def add_units(session: Session, texts: list[str], *, output_id: str | None = None) -> list[int]:
    """One processed ticket per text, each one unit with its fake vector; the unit ids."""
    accepted = store.add_feedback(
        session,
        items=[
            FeedbackCreate(source="test", external_id=f"t-{next(_external_ids)}", text=text,
                           customer_id=f"c{i}", output_id=output_id)
            for i, text in enumerate(texts)
        ],
    )  # fmt: skip
    store.update_feedback(
        session,
        rows=[
            {"id": a.id, "status": "processed", "redacted_text": text, "processed_at": utcnow()}
            for a, text in zip(accepted, texts, strict=True)
        ],
    )
    vectors = EMBEDDER.embed(texts)
    store.add_vectors(
        session,
        vectors={text_hash(t): vector_to_bytes(v) for t, v in zip(texts, vectors, strict=True)},
        model_id=EMBEDDER.model_id,
        dim=EMBEDDER.dim,
    )
    rows = [
        {"feedback_id": a.id, "position": 0, "text": text,
         "lemmas": " ".join(text.lower().rstrip(".").split()), "text_hash": text_hash(text)}
        for a, text in zip(accepted, texts, strict=True)
    ]  # fmt: skip
    return store.add_units(session, rows=rows)


def add_ticket(
    session: Session, texts: list[str], *, written: datetime, customer: str
) -> list[int]:
    """One processed ticket written at ``written``, one unit per text; the unit ids."""
    [accepted] = store.add_feedback(
        session,
        items=[FeedbackCreate(source="test", external_id=f"t-{next(_external_ids)}",
                              text=" ".join(texts), customer_id=customer, created_at=written)],
    )  # fmt: skip
    store.update_feedback(
        session,
        rows=[{"id": accepted.id, "status": "processed", "redacted_text": " ".join(texts),
               "processed_at": utcnow()}],
    )  # fmt: skip
    vectors = EMBEDDER.embed(texts)
    store.add_vectors(
        session,
        vectors={text_hash(t): vector_to_bytes(v) for t, v in zip(texts, vectors, strict=True)},
        model_id=EMBEDDER.model_id,
        dim=EMBEDDER.dim,
    )
    rows = [
        {"feedback_id": accepted.id, "position": n, "text": text,
         "lemmas": " ".join(text.lower().rstrip(".").split()), "text_hash": text_hash(text)}
        for n, text in enumerate(texts)
    ]  # fmt: skip
    return store.add_units(session, rows=rows)


def clustering(units: UnitMatrix, label_of: dict[int, int]) -> cluster.Clustering:
    """A clustering as ``Clusterer.fit`` returns it: ``label_of`` maps unit id -> label; units
    left out are unassigned."""
    labels = np.array([label_of.get(u, -1) for u in units.ids], dtype=np.int64)
    centroids = cluster.centroids_of(units.vectors, labels)
    similarity = np.array(
        [units.vectors[i] @ centroids[label] if label >= 0 else np.nan
         for i, label in enumerate(labels)],
        dtype=np.float32,
    )  # fmt: skip
    method = np.array(["cluster" if label >= 0 else "" for label in labels])
    return cluster.Clustering(labels, centroids, similarity, method)


def recluster(session: Session, settings, label_of: dict[int, int]) -> list[dict]:  # type: ignore[no-untyped-def]
    units = load_units(session, model_id=EMBEDDER.model_id)
    return recluster_issues(
        session,
        units,
        clustering(units, label_of),
        store.membership_map(session),
        params=MembershipParams.from_settings(settings),
    )


def diagnose_all(session: Session, settings, categorizer, *, now) -> None:  # type: ignore[no-untyped-def]
    """Every ticket judged, then every issue diagnosed, as a refresh does."""
    units = load_units(session, model_id=EMBEDDER.model_id)
    params = DiagnoseParams.from_settings(settings)
    judged = judge_tickets(session, units, categorizer, params=params, model_id=EMBEDDER.model_id)
    diagnose(session, units, issue_of(store.membership_map(session)), categorizer, judged,
             params=params, now=now)  # fmt: skip


def issue_of_units(session: Session, unit_ids: list[int]) -> set[int]:
    found = issue_of(store.membership_map(session))
    return {found[u] for u in unit_ids if u in found}


def test_pipeline_steps_assign_new_attaches_a_near_unit_and_reopens_a_resolved_issue(
    engine, settings
):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"][:3])
        recluster(session, settings, dict.fromkeys(export, 0))
        (issue_id,) = issue_of_units(session, export)
        store.update_issue(session, issue_id=issue_id, changes={"status": "resolved"},
                           api_key_id=None, actor="test")  # fmt: skip

    near, far = TOPICS["export"][3], TOPICS["numbers"][0]
    with db.session_scope(engine) as session:
        fresh = add_units(session, [near, far])
        assigned = assign_new(
            session,
            fresh,
            EMBEDDER.embed([near, far]),
            threshold=MembershipParams.from_settings(settings).assign_threshold,
        )
    assert assigned == 1
    with db.session_scope(engine) as session:
        members = {m.unit_id: m for m in store.memberships(session)}
        issue = session.get(Issue, issue_id)
        assert members[fresh[0]].issue_id == issue_id and members[fresh[0]].method == "assigned"
        assert fresh[1] not in members  # not close to any issue: left for the next clustering
        assert issue.status == IssueStatus.regressed
        assert issue.lineage[-1]["event"] == "regressed"
        assert issue.size == 4


@pytest.mark.parametrize(("own", "joins"), [(0.999, False), (-1.0, True), (None, True)])
def test_pipeline_steps_assign_new_uses_the_threshold_the_issue_was_calibrated_with(
    engine, settings, own, joins
):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"][:3])
        units = load_units(session, model_id=EMBEDDER.model_id)
        result = clustering(units, dict.fromkeys(export, 0))
        result.thresholds = {} if own is None else {0: own}
        recluster_issues(session, units, result, store.membership_map(session),
                         params=MembershipParams.from_settings(settings))  # fmt: skip
        (issue_id,) = issue_of_units(session, export)
        assert session.get(Issue, issue_id).attach_threshold == own

    near = TOPICS["export"][3]  # well above the global threshold, not a near-duplicate
    with db.session_scope(engine) as session:
        fresh = add_units(session, [near])
        global_threshold = MembershipParams.from_settings(settings).assign_threshold
        assigned = assign_new(session, fresh, EMBEDDER.embed([near]), threshold=global_threshold)
    assert assigned == (1 if joins else 0)


def test_pipeline_steps_recluster_keeps_ids_and_records_split_and_merge(engine, settings):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"][:4])
        numbers = add_units(session, TOPICS["numbers"][:4])
        created = recluster(session, settings, {**dict.fromkeys(export, 0),
                                                **dict.fromkeys(numbers, 1)})  # fmt: skip
        (export_issue,) = issue_of_units(session, export)
        (numbers_issue,) = issue_of_units(session, numbers)
    assert created == [] and export_issue != numbers_issue

    # The same groups under other labels are the same issues.
    with db.session_scope(engine) as session:
        again = recluster(session, settings, {**dict.fromkeys(export, 7),
                                              **dict.fromkeys(numbers, 3)})  # fmt: skip
        assert again == []
        assert issue_of_units(session, export) == {export_issue}
        assert issue_of_units(session, numbers) == {numbers_issue}

    # Half of the export issue leaves for a cluster of its own: a new issue, split from it.
    with db.session_scope(engine) as session:
        split = recluster(session, settings, {**dict.fromkeys(export[:2], 0),
                                              **dict.fromkeys(export[2:], 1),
                                              **dict.fromkeys(numbers, 2)})  # fmt: skip
        (new_issue,) = issue_of_units(session, export[2:])
        assert issue_of_units(session, export[:2]) == {export_issue}
        assert new_issue not in (export_issue, numbers_issue)
    assert {(e["issue_id"], e["event"], e["other_issue_id"]) for e in split} == {
        (new_issue, "split_from", export_issue),
        (export_issue, "split_into", new_issue),
    }

    # Both export issues in one cluster: they share as many units with it, so the older one
    # (the lower id) carries on and the other is merged into it.
    with db.session_scope(engine) as session:
        merged = recluster(session, settings, {**dict.fromkeys(export, 0),
                                               **dict.fromkeys(numbers, 1)})  # fmt: skip
        assert issue_of_units(session, export) == {export_issue}
        gone = session.get(Issue, new_issue)
        assert gone.merged_into == export_issue
        assert [e["event"] for e in gone.lineage] == ["created", "split_from", "merged_into"]
    assert {(e["issue_id"], e["event"], e["other_issue_id"]) for e in merged} == {
        (new_issue, "merged_into", export_issue),
        (export_issue, "merged_from", new_issue),
    }


def test_pipeline_steps_relabel_never_overwrites_a_human_title(engine, settings):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"])
        numbers = add_units(session, TOPICS["numbers"])
        recluster(session, settings, {**dict.fromkeys(export, 0), **dict.fromkeys(numbers, 1)})
        (export_issue,) = issue_of_units(session, export)
        (numbers_issue,) = issue_of_units(session, numbers)
        store.update_issue(session, issue_id=numbers_issue, changes={"title": "Ledger gap"},
                           api_key_id=None, actor="test")  # fmt: skip

    with db.session_scope(engine) as session:
        relabel(
            session,
            load_units(session, model_id=EMBEDDER.model_id),
            issue_of(store.membership_map(session)),
            params=LabelParams.from_settings(settings),
        )
    with db.session_scope(engine) as session:
        kept, machine = session.get(Issue, numbers_issue), session.get(Issue, export_issue)
        assert kept.title == "Ledger gap"
        assert kept.keywords and 3 <= len(kept.quotes) <= 5  # the rest is relabelled
        assert machine.title and machine.title != "Ledger gap"
        assert any("export" in k for k in machine.keywords)


def test_pipeline_steps_link_pending_links_an_explicit_output_id(engine, settings):  # type: ignore[no-untyped-def]
    output = ModelOutputCreate(output_id="summary-1", model="summarizer", model_version="2.3.0",
                               output="Export of the report screen")  # fmt: skip
    with db.session_scope(engine) as session:
        (stored,) = store.add_model_outputs(session, items=[output])
        add_units(session, TOPICS["export"][:1], output_id="summary-1")
        add_units(session, TOPICS["numbers"][:1])  # names no output, and no user or session

    params = LinkParams.from_settings(settings)
    with db.session_scope(engine) as session:
        assert link_pending(session, params=params, similarity=None) == 1
    with db.session_scope(engine) as session:
        links = store.links_by_feedback(session)
        assert list(links.values()) == [[stored.id]]
        assert link_pending(session, params=params, similarity=None) == 0  # each ticket once


def test_pipeline_steps_each_unit_s_facet_is_the_feature_its_ticket_saw(engine, settings):  # type: ignore[no-untyped-def]
    outputs = [
        ModelOutputCreate(output_id=f"out-{feature}", model="coder", feature=feature, output="x")
        for feature in ("tests", "inline")
    ]
    with db.session_scope(engine) as session:
        store.add_model_outputs(session, items=outputs)
        tests = add_units(session, TOPICS["export"][:2], output_id="out-tests")
        inline = add_units(session, TOPICS["export"][2:3], output_id="out-inline")
        alone = add_units(session, TOPICS["numbers"][:1])  # names no output
    with db.session_scope(engine) as session:
        link_pending(session, params=LinkParams.from_settings(settings), similarity=None)
    categorizer = for_embedder(load_categorizer(settings=settings), EMBEDDER.model_id)
    with db.session_scope(engine) as session:
        units = load_units(session, model_id=EMBEDDER.model_id)
        params = DiagnoseParams.from_settings(settings)
        judged = judge_tickets(session, units, categorizer, params=params,
                               model_id=EMBEDDER.model_id)  # fmt: skip
        facets = judged.facets(units)
    assert facets is not None
    row = {unit_id: facets[i] for i, unit_id in enumerate(units.ids)}
    inline_column, tests_column = [1, 0], [0, 1]  # sorted: coder/inline, coder/tests
    for unit_id in tests:
        np.testing.assert_allclose(row[unit_id], tests_column)
    np.testing.assert_allclose(row[inline[0]], inline_column)
    np.testing.assert_allclose(row[alone[0]], [0, 0])  # unknown: the clusterer fills it in


def test_pipeline_steps_each_unit_s_context_is_its_whole_ticket_s_vector(engine, settings):  # type: ignore[no-untyped-def]
    texts = [TOPICS["export"][0], "Could you take a look?"]
    with db.session_scope(engine) as session:
        two = add_ticket(session, texts, written=utcnow(), customer="c1")
        one = add_units(session, TOPICS["numbers"][:1])
    categorizer = for_embedder(load_categorizer(settings=settings), EMBEDDER.model_id)
    params = DiagnoseParams.from_settings(settings)
    with db.session_scope(engine) as session:
        units = load_units(session, model_id=EMBEDDER.model_id)
        judged = judge_tickets(session, units, categorizer, params=params,
                               model_id=EMBEDDER.model_id, embed=EMBEDDER.embed)  # fmt: skip
        contexts = judged.contexts(units)
        # The API's corrections decide without an embedder: no whole tickets to read.
        without = judge_tickets(session, units, categorizer, params=params,
                                model_id=EMBEDDER.model_id)  # fmt: skip
    assert contexts is not None and contexts.shape == (len(units.ids), EMBEDDER.dim)
    row = {unit_id: contexts[i] for i, unit_id in enumerate(units.ids)}
    whole = EMBEDDER.embed([" ".join(texts)])[0]
    for unit_id in two:  # both statements read in the context of the ticket they share
        np.testing.assert_allclose(row[unit_id], whole, rtol=1e-5)
    np.testing.assert_allclose(row[one[0]], EMBEDDER.embed(TOPICS["numbers"][:1])[0], rtol=1e-5)
    assert without.contexts(units) is None


def test_pipeline_steps_link_pending_reads_each_ticket_s_window_across_a_long_batch(
    engine, settings
):  # type: ignore[no-untyped-def]
    # 120 tickets over two months, more than one lookup's worth: each links to its user's
    # answer of an hour before, never to that user's answer of three days before.
    start = datetime(2026, 9, 1, tzinfo=UTC)
    tickets, answers = [], []
    for i in range(120):
        at = start + timedelta(hours=12 * i)
        answers += [
            ModelOutputCreate(output_id=f"seen-{i}", model="m", output="The answer.",
                              user_id=f"u{i}", created_at=at - timedelta(hours=1)),
            ModelOutputCreate(output_id=f"old-{i}", model="m", output="An older answer.",
                              user_id=f"u{i}", created_at=at - timedelta(days=3)),
        ]  # fmt: skip
        tickets.append(FeedbackCreate(source="test", external_id=f"w-{i}", text="Wrong answer.",
                                      user_id=f"u{i}", created_at=at))  # fmt: skip
    with db.session_scope(engine) as session:
        stored = {a.output_id: a.id for a in store.add_model_outputs(session, items=answers)}
        accepted = store.add_feedback(session, items=tickets)
        store.update_feedback(session, rows=[
            {"id": a.id, "status": "processed", "redacted_text": "Wrong answer.",
             "processed_at": utcnow()}
            for a in accepted
        ])  # fmt: skip
    with db.session_scope(engine) as session:
        assert link_pending(session, params=LinkParams.from_settings(settings), similarity=None)
        links = store.links_by_feedback(session)
    assert {f: sorted(o) for f, o in links.items()} == {
        a.id: [stored[f"seen-{i}"]] for i, a in enumerate(accepted)
    }


def test_pipeline_steps_diagnose_keeps_a_human_category_and_stores_evidence(engine, settings):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"])
        language = add_units(session, TOPICS["language"])
        recluster(session, settings, {**dict.fromkeys(export, 0), **dict.fromkeys(language, 1)})
        (export_issue,) = issue_of_units(session, export)
        (language_issue,) = issue_of_units(session, language)
        store.update_issue(session, issue_id=language_issue, changes={"category": "data"},
                           api_key_id=None, actor="test")  # fmt: skip

    # The shipped classifier knows another model's vectors: cue words and outputs decide.
    categorizer = for_embedder(load_categorizer(settings=settings), EMBEDDER.model_id)
    assert categorizer.classifier is None
    with db.session_scope(engine) as session:
        diagnose_all(session, settings, categorizer, now=utcnow())
    with db.session_scope(engine) as session:
        human, machine = session.get(Issue, language_issue), session.get(Issue, export_issue)
        assert human.category == "data" and human.category_confidence == 1.0
        assert human.evidence[0]["signal"] == "human" and len(human.evidence) > 1
        assert machine.category in CATEGORIES and machine.evidence
        assert machine.evidence[0]["signal"] != "human"
        for issue in (human, machine):
            assert issue.priority > 0 and set(issue.priority_breakdown) >= {"volume", "reach"}


def test_pipeline_steps_every_ticket_gets_its_own_category_and_the_issue_their_mean(
    engine, settings
):  # type: ignore[no-untyped-def]
    with db.session_scope(engine) as session:
        export = add_units(session, TOPICS["export"][:4])
        language = add_units(session, TOPICS["language"][:4])
        alone = add_units(session, TOPICS["numbers"][:1])  # in no issue
        recluster(session, settings, {**dict.fromkeys(export, 0), **dict.fromkeys(language, 1)})
        (export_issue,) = issue_of_units(session, export)
        (language_issue,) = issue_of_units(session, language)
        store.update_issue(session, issue_id=language_issue, changes={"category": "data"},
                           api_key_id=None, actor="test")  # fmt: skip

    categorizer = for_embedder(load_categorizer(settings=settings), EMBEDDER.model_id)
    with db.session_scope(engine) as session:
        diagnose_all(session, settings, categorizer, now=utcnow())
    with db.session_scope(engine) as session:
        tickets = {row["id"]: row for row in store.export_feedback(session)}
        by_unit = {u.id: u.feedback_id for u in session.exec(select(Unit)).all()}
        machine, human = session.get(Issue, export_issue), session.get(Issue, language_issue)
        for unit_id in export + language + alone:
            ticket = tickets[by_unit[unit_id]]
            assert ticket["category"] in CATEGORIES and ticket["category_confidence"] is not None
            feedback = session.get(Feedback, by_unit[unit_id])
            assert feedback.category_evidence  # each ticket says why
        assert tickets[by_unit[alone[0]]]["issue_id"] is None
        assert tickets[by_unit[alone[0]]]["issue_category"] is None
        # The issue's category is the mean of its members', which it never overwrites.
        members = [tickets[by_unit[u]] for u in export]
        assert machine.evidence[0]["signal"] == "tickets"
        votes = sum(1 for t in members if t["category"] == machine.category)
        assert machine.evidence[0]["reason"].startswith(f"{votes} of its {len(members)} tickets")
        assert all(t["issue_category"] == machine.category for t in members)
        # A person's category stays on the issue; its members keep their own.
        assert human.category == "data" and human.evidence[0]["signal"] == "human"
        assert [tickets[by_unit[u]]["issue_category"] for u in language] == ["data"] * 4
        own = [tickets[by_unit[u]]["category"] for u in language]
        assert own == [session.get(Feedback, by_unit[u]).category for u in language]


def test_pipeline_steps_issue_category_is_the_mean_of_member_probabilities():
    def member(probabilities: dict[str, float]) -> CategoryDecision:
        best = max(probabilities, key=lambda n: probabilities[n])
        return CategoryDecision(best, probabilities[best], None, [], {}, probabilities,
                                probabilities)  # fmt: skip

    members = [member({"ui": 0.9, "data": 0.1, "model": 0.0, "expectation": 0.0}),
               member({"ui": 0.0, "data": 0.55, "model": 0.45, "expectation": 0.0}),
               member({"ui": 0.0, "data": 0.6, "model": 0.4, "expectation": 0.0})]  # fmt: skip
    issue = aggregate(members, None, Categorizer(CueLexicon.load(DEFAULT_CUES)))
    # The mean, not a vote: ui's one confident member (0.30 on average) stays behind data.
    assert issue.category == "data" and issue.runner_up == "ui"
    assert issue.confidence == pytest.approx((0.1 + 0.55 + 0.6) / 3, abs=1e-4)
    assert issue.evidence[0].reason.startswith("2 of its 3 tickets are data")


def test_pipeline_steps_a_long_ticket_counts_once_and_the_list_agrees_with_the_digest(
    engine, settings
):  # type: ignore[no-untyped-def]
    now = utcnow()
    week = digest.last_complete_week(now)
    start, _ = digest.parse_week(week)
    export = TOPICS["export"]
    with db.session_scope(engine) as session:
        # One customer pasted the same sentence 40 times; five others wrote once this week, and
        # one a week in the four weeks before.
        units = add_ticket(session, [export[0]] * 40, written=start + timedelta(days=1),
                           customer="c-long")  # fmt: skip
        for n in range(5):
            units += add_ticket(session, [export[n]], written=start + timedelta(days=2, hours=n),
                                customer=f"c{n}")  # fmt: skip
        for weeks in range(1, 5):
            before = start - timedelta(weeks=weeks) + timedelta(days=3)
            units += add_ticket(session, [export[weeks]], written=before, customer=f"b{weeks}")
        # Written in the week under way: it waits for next week's figures.
        units += add_ticket(session, [export[1]], written=now, customer="c-now")
        recluster(session, settings, dict.fromkeys(units, 0))
        (issue_id,) = issue_of_units(session, units)

    categorizer = for_embedder(load_categorizer(settings=settings), EMBEDDER.model_id)
    with db.session_scope(engine) as session:
        diagnose_all(session, settings, categorizer, now=now)
    with db.session_scope(engine) as session:
        trend = session.get(Issue, issue_id).trend
        # Six tickets after one a week, not 45 statements: still a spike, by the Poisson test.
        assert (trend["this_week"], trend["trailing_mean"], trend["week"]) == (6, 1.0, week)
        assert trend["spiking"]
        data = digest.collect(session, week=week, settings=settings, now=now)
        [row] = [r for r in issue_rows(session, category=None, top=50) if r["id"] == issue_id]
    [change] = [c for c in data.changes if c.issue.id == issue_id]
    assert change.issue.this_week == 6
    # The issue list and the digest show the same figures for the same week.
    assert row["trend"] == trend
    assert (change.this_week, change.trailing_mean, change.spiking, change.p_value) == (
        trend["this_week"], trend["trailing_mean"], trend["spiking"], trend["p_value"],
    )  # fmt: skip
    assert change.change == pytest.approx(trend["change"])
