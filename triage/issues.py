"""Issue bookkeeping: turn cluster and label results into issue rows with stable ids.

The stages (``cluster``, ``label``) work on arrays; this module is where their answers meet the
database: memberships, lineage, centroids, titles. Anything a person set (``human_fields``,
manual memberships) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import Session

from triage import cluster, store
from triage.config import Settings
from triage.embed import vector_from_bytes, vector_to_bytes
from triage.label import label_issues
from triage.models import Issue, IssueStatus, Membership, Unit, utcnow

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
        member_ids = {m.unit_id for m in store.memberships(self.session)}
        if not units.ids:
            return 0.0
        return sum(1 for u in units.ids if u not in member_ids) / len(units.ids)

    def count_open(self) -> int:
        return sum(1 for issue in store.active_issues(self.session) if issue.size > 0)

    # --- between re-clusterings -------------------------------------------------------------

    def assign_new(self, units: list[Unit], vectors: np.ndarray) -> int:
        """Attach fresh units to the nearest receiving issue when similar enough."""
        issues = [
            i for i in store.active_issues(self.session) if i.centroid and i.status in RECEIVING
        ]
        if not units or not issues:
            return 0
        centroids = {i.id: vector_from_bytes(i.centroid) for i in issues}
        labels, similarity = cluster.assign(
            vectors, centroids, threshold=self.settings.cluster_assign_threshold
        )
        by_id = {i.id: i for i in issues}
        rows = []
        for unit, label, sim in zip(units, labels, similarity, strict=True):
            if label < 0:
                continue
            rows.append(
                Membership(
                    unit_id=unit.id, issue_id=int(label), method="assigned", similarity=float(sim)
                )
            )
            self._reopen_if_resolved(by_id[int(label)])
        self.session.add_all(rows)
        self.session.flush()
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
        existing = store.memberships(self.session)
        manual = {m.unit_id for m in existing if m.method == "manual"}
        previous: dict[int, set[int]] = {}
        for m in existing:
            previous.setdefault(m.issue_id, set()).add(m.unit_id)
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

        events = []
        for event in match.lineage:
            record = event.to_record(issue_for_label, at=now)
            events.append(record)
            issue = issues[record["issue_id"]]
            issue.lineage = [*issue.lineage, record]
            if record["event"] == "merged_into":
                issue.merged_into = record["other_issue_id"]
        for issue_id in match.retired:
            issues[issue_id].lineage = [*issues[issue_id].lineage, {"event": "retired", "at": now}]

        row_of = {unit_id: row for row, unit_id in enumerate(units.ids)}
        rows = [
            Membership(
                unit_id=unit_id,
                issue_id=issue_for_label[label],
                method=str(result.method[row_of[unit_id]]),
                similarity=float(result.similarity[row_of[unit_id]]),
            )
            for label, members in clusters.items()
            for unit_id in sorted(members)
        ]
        store.set_memberships(self.session, rows=rows)
        self.session.add_all(issues.values())
        store.refresh_issue_sizes(self.session)
        return events

    # --- labels -----------------------------------------------------------------------------

    def relabel(self, units: UnitMatrix) -> None:
        """Keywords, quotes, centroid and (unless a person set it) title of every issue."""
        issue_of = {m.unit_id: m.issue_id for m in store.memberships(self.session)}
        labels = np.array([issue_of.get(u, -1) for u in units.ids], dtype=int)
        found = label_issues(
            labels,
            units.texts,
            units.lemmas,
            units.vectors,
            n_keywords=self.settings.label_keywords,
            n_quotes=self.settings.label_quotes,
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
