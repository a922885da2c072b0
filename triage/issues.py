"""Issue bookkeeping: turn cluster and label results into issue rows with stable ids.

The stages (``cluster``, ``label``) work on arrays; this module is where their answers meet the
database: memberships, lineage, centroids, titles. Anything a person set (``human_fields``,
manual memberships) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlmodel import Session

from triage import cluster, store
from triage.categorize import Categorizer, CategoryDecision, lemma_docs
from triage.config import Settings
from triage.embed import vector_from_bytes, vector_to_bytes
from triage.label import label_issues
from triage.link import (
    FeedbackRecord,
    LinkParams,
    OutputRecord,
    SignalParams,
    Similarity,
    TrafficProfile,
    link_feedback,
    output_signals,
)
from triage.models import Issue, IssueStatus, ModelOutput, as_utc, utcnow
from triage.rank import IssueStats, RankConfig, load_severity, prioritize

# Issues in these states still take in new feedback; a resolved one that does is regressed.
RECEIVING = {
    IssueStatus.open,
    IssueStatus.acknowledged,
    IssueStatus.regressed,
    IssueStatus.resolved,
}


@dataclass
class UnitMatrix:
    ids: list[int]
    texts: list[str]
    lemmas: list[list[str]]
    vectors: np.ndarray

    def rows(self, unit_ids: set[int]) -> np.ndarray:
        return np.array([i for i, u in enumerate(self.ids) if u in unit_ids], dtype=int)


class IssueBook:
    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.settings = settings
        self._memberships: dict[int, tuple[int, str]] | None = None

    def memberships(self) -> dict[int, tuple[int, str]]:
        """unit id -> (issue id, method): read once, and again only after this book changed
        them, so one refresh works on one picture (it holds the issue lock; units another
        worker assigns meanwhile are seen by the next refresh)."""
        if self._memberships is None:
            self._memberships = store.membership_map(self.session)
        return self._memberships

    def issue_of(self) -> dict[int, int]:
        return {unit_id: issue_id for unit_id, (issue_id, _) in self.memberships().items()}

    def load_units(self, model_id: str) -> UnitMatrix:
        ids, texts, lemmas, blobs = store.unit_vectors(self.session, model_id=model_id)
        vectors = (
            np.stack([vector_from_bytes(b) for b in blobs])
            if blobs
            else np.empty((0, 0), dtype=np.float32)
        )
        return UnitMatrix(ids, texts, [s.split() for s in lemmas], vectors)

    def has_issues(self) -> bool:
        return any(issue.size > 0 for issue in store.active_issues(self.session))

    def unassigned_share(self, units: UnitMatrix) -> float:
        member_ids = self.memberships()
        if not units.ids:
            return 0.0
        return sum(1 for u in units.ids if u not in member_ids) / len(units.ids)

    def count_open(self) -> int:
        return sum(1 for issue in store.active_issues(self.session) if issue.size > 0)

    # --- between re-clusterings -------------------------------------------------------------

    def assign_new(self, unit_ids: list[int], vectors: np.ndarray) -> int:
        """Attach fresh units to the nearest receiving issue when similar enough."""
        receiving = store.issue_centroids(self.session, statuses=RECEIVING)
        if not unit_ids or not receiving:
            return 0
        centroids = {issue_id: vector_from_bytes(blob) for issue_id, (blob, _) in receiving.items()}
        labels, similarity = cluster.assign(
            vectors, centroids, threshold=self.settings.cluster_assign_threshold
        )
        rows = [
            {"unit_id": unit_id, "issue_id": int(label), "method": "assigned",
             "similarity": float(sim)}
            for unit_id, label, sim in zip(unit_ids, labels, similarity, strict=True)
            if label >= 0
        ]  # fmt: skip
        store.add_memberships(self.session, rows=rows)
        self._memberships = None
        for issue_id in sorted({row["issue_id"] for row in rows}):
            if receiving[issue_id][1] == IssueStatus.resolved:
                self._reopen_if_resolved(store.get_issue(self.session, issue_id=issue_id))
        store.refresh_issue_sizes(self.session)
        return len(rows)

    def _reopen_if_resolved(self, issue: Issue) -> None:
        # Like an error tracker: new feedback on a fixed issue means the fix did not hold.
        if issue.status == IssueStatus.resolved:
            issue.status = IssueStatus.regressed
            issue.lineage = [*issue.lineage, {"event": "regressed", "at": utcnow().isoformat()}]
            self.session.add(issue)

    # --- full re-clustering -----------------------------------------------------------------

    def recluster(self, units: UnitMatrix, result: cluster.Clustering) -> list[dict]:
        """Match new clusters to existing issues, write memberships, record lineage."""
        existing = self.memberships()
        manual = {unit_id for unit_id, (_, method) in existing.items() if method == "manual"}
        previous: dict[int, set[int]] = {}
        for unit_id, (issue_id, _) in existing.items():
            previous.setdefault(issue_id, set()).add(unit_id)
        issues = {i.id: i for i in store.active_issues(self.session)}
        previous_centroids = {
            issue_id: vector_from_bytes(issues[issue_id].centroid)
            for issue_id in previous
            if issue_id in issues and issues[issue_id].centroid
        }
        clusters: dict[int, set[int]] = {}
        for unit_id, label in zip(units.ids, result.labels, strict=True):
            if label >= 0 and unit_id not in manual:
                clusters.setdefault(int(label), set()).add(unit_id)
        match = cluster.match_issues(
            {k: v for k, v in previous.items() if k in issues},
            previous_centroids,
            clusters,
            {label: result.centroids[label] for label in clusters},
            min_overlap=self.settings.cluster_match_min_overlap,
            min_similarity=self.settings.cluster_match_min_similarity,
        )
        now = utcnow().isoformat()
        issue_for_label: dict[int, int] = {}
        for label in sorted(clusters):
            issue_id = match.issue_for_cluster.get(label)
            if issue_id is None:
                issue = Issue(lineage=[{"event": "created", "at": now}])
                self.session.add(issue)
                self.session.flush()
                issue_id = issue.id
                issues[issue_id] = issue
            issue_for_label[label] = issue_id  # type: ignore[assignment]
            issues[issue_id].centroid = vector_to_bytes(result.centroids[label])

        events: list[dict] = []

        def record(issue_id: int, event: str, other: int | None, units: int) -> None:
            entry = {"event": event, "other_issue_id": other, "units": units, "at": now}
            issues[issue_id].lineage = [*issues[issue_id].lineage, entry]
            events.append({"issue_id": issue_id, **entry})

        for event in match.lineage:
            if event.kind == "split_from":
                new_id = issue_for_label[event.cluster]
                record(new_id, "split_from", event.issue_id, event.shared_units)
                record(event.issue_id, "split_into", new_id, event.shared_units)
            else:  # merged_into
                survivor = event.into_issue_id
                record(event.issue_id, "merged_into", survivor, event.shared_units)
                record(survivor, "merged_from", event.issue_id, event.shared_units)  # type: ignore[arg-type]
                issues[event.issue_id].merged_into = survivor
        for issue_id in sorted(match.retired):
            record(issue_id, "retired", None, 0)

        row_of = {unit_id: row for row, unit_id in enumerate(units.ids)}
        rows = [
            {
                "unit_id": unit_id,
                "issue_id": issue_for_label[label],
                "method": str(result.method[row_of[unit_id]]),
                "similarity": float(result.similarity[row_of[unit_id]]),
            }
            for label, members in clusters.items()
            for unit_id in sorted(members)
        ]
        store.set_memberships(self.session, rows=rows)
        self._memberships = None
        self.session.add_all(issues.values())
        store.refresh_issue_sizes(self.session)
        return events

    # --- labels -----------------------------------------------------------------------------

    def relabel(self, units: UnitMatrix) -> None:
        """Keywords, quotes, centroid and (unless a person set it) title of every issue."""
        issue_of = self.issue_of()
        labels = np.array([issue_of.get(u, -1) for u in units.ids], dtype=int)
        found = label_issues(
            labels,
            units.texts,
            units.lemmas,
            units.vectors,
            n_keywords=self.settings.label_keywords,
            n_quotes=self.settings.label_quotes,
            max_quote_similarity=self.settings.label_quote_max_similarity,
        )
        for issue in store.active_issues(self.session):
            if issue.id not in found:
                continue
            members = units.vectors[labels == issue.id]
            centroid = members.mean(axis=0)
            issue.centroid = vector_to_bytes(centroid / (np.linalg.norm(centroid) or 1.0))
            label = found[issue.id]
            issue.keywords, issue.quotes = label.keywords, label.quotes
            if "title" not in issue.human_fields:
                issue.title = label.title
            issue.updated_at = utcnow()
            self.session.add(issue)

    # --- links --------------------------------------------------------------------------------

    def link_pending(self, similarity: Similarity | None) -> int:
        """Decide the links of every processed ticket not linked yet; returns links made."""
        feedback = store.feedback_to_link(self.session)
        if not feedback:
            return 0
        params = LinkParams.from_settings(self.settings)
        records = [
            FeedbackRecord(
                id=f.id,  # type: ignore[arg-type]
                created_at=as_utc(f.created_at or f.received_at),  # type: ignore[arg-type]
                text=f.redacted_text or "",
                user_id=f.user_id,
                session_id=f.session_id,
                output_id=f.output_id,
                customer_id=f.customer_id,
                customer_value=f.customer_value,
            )
            for f in feedback
        ]
        candidates = store.link_candidates(
            self.session,
            output_ids=[r.output_id for r in records if r.output_id],
            user_ids=[r.user_id for r in records if r.user_id],
            session_ids=[r.session_id for r in records if r.session_id],
            since=min(r.created_at for r in records) - params.window,
            until=max(r.created_at for r in records),
        )
        decisions = link_feedback(
            records, [output_record(o) for o in candidates], params, similarity=similarity
        )
        store.add_links(self.session, rows=[vars(d) for d in decisions])
        store.mark_linked(self.session, feedback_ids=[r.id for r in records])
        return len(decisions)

    # --- category and priority ------------------------------------------------------------------

    def diagnose(self, units: UnitMatrix, categorizer: Categorizer, *, now: datetime) -> None:
        """Category with evidence, linked model versions, and priority with its breakdown."""
        issue_of = self.issue_of()
        context = store.unit_context(self.session)
        links = store.links_by_feedback(self.session)
        outputs = {o.id: output_record(o) for o in store.all_model_outputs(self.session)}
        traffic = TrafficProfile(list(outputs.values()), SignalParams.from_settings(self.settings))
        rank_config = RankConfig.from_settings(self.settings)
        severity = load_severity(rank_config.severity_path)
        rows_of: dict[int, list[int]] = {}
        for row, unit_id in enumerate(units.ids):
            if unit_id in issue_of:
                rows_of.setdefault(issue_of[unit_id], []).append(row)

        for issue in store.active_issues(self.session):
            rows = rows_of.get(issue.id)  # type: ignore[arg-type]
            if not rows:
                continue
            texts = [units.texts[r] for r in rows]
            docs = lemma_docs(texts)  # parsed once for the cue and the severity lexicons
            feedback_ids = sorted({context[units.ids[r]][0] for r in rows})
            linked_ids = sorted({o for f in feedback_ids for o in links.get(f, [])})
            linked = [outputs[o] for o in linked_ids if o in outputs]
            signals = output_signals(linked, traffic) if linked else None
            decision = categorizer.decide(texts, units.vectors[rows], signals, docs=docs)
            self._apply_category(issue, decision)
            issue.model_versions = [
                {
                    "model": g.within, "version": g.value, "linked": g.linked_count,
                    "share": round(g.linked_share, 3), "traffic_share": round(g.traffic_share, 3),
                    "lift": round(g.lift, 2), "p_value": g.p_value, "significant": g.significant,
                }
                for g in (signals.groups if signals else [])
                if g.field == "model_version"
            ][:5]  # fmt: skip
            customers: dict[str, float | None] = {}
            for r in rows:
                _, _, customer, value = context[units.ids[r]]
                if customer:
                    customers[customer] = max(value or 0.0, customers.get(customer) or 0.0) or None
            priority = prioritize(
                IssueStats(
                    timestamps=[as_utc(context[units.ids[r]][1]) for r in rows],  # type: ignore[misc]
                    customers=customers,
                    texts=texts,
                    category_confidence=issue.category_confidence,
                    now=now,
                ),
                config=rank_config,
                severity_lexicon=severity,
                docs=docs,
            )
            issue.priority = round(priority.score, 6)
            issue.priority_breakdown = {k: round(v, 6) for k, v in priority.breakdown.items()}
            issue.trend = priority.trend.to_dict()
            self.session.add(issue)

    def _apply_category(self, issue: Issue, decision: CategoryDecision) -> None:
        evidence = [e.to_dict() for e in decision.evidence[: self.settings.categorize_max_evidence]]
        if "category" in issue.human_fields:
            # A person decided; the machine's view stays visible as evidence, never as the answer.
            issue.category_confidence = 1.0
            issue.category_runner_up = (
                decision.category if decision.category != issue.category else decision.runner_up
            )
            by_person = {"reason": "category set by a person", "signal": "human",
                         "category": issue.category, "contribution": 1.0}  # fmt: skip
            issue.evidence = [by_person, *evidence]
            return
        issue.category = decision.category
        issue.category_confidence = decision.confidence
        issue.category_runner_up = decision.runner_up
        issue.evidence = evidence


def output_record(output: ModelOutput) -> OutputRecord:
    return OutputRecord(
        id=output.id,  # type: ignore[arg-type]
        output_id=output.output_id,
        created_at=as_utc(output.created_at or output.received_at),  # type: ignore[arg-type]
        model=output.model,
        model_version=output.model_version,
        feature=output.feature,
        input=output.input,
        output=output.output,
        confidence=output.confidence,
        latency_ms=output.latency_ms,
        user_id=output.user_id,
        session_id=output.session_id,
        meta=output.meta,
    )
