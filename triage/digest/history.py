"""The live issues of a digest and what happened to them in any period: new, resolved by a
person, regressed. Both a week and the week before are asked, for the headline's comparison."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from triage.digest.model import IssueRef
from triage.digest.values import as_moment, between
from triage.models import AuditLog, Issue, IssueStatus, as_utc


def _status_changes(audit: Sequence[AuditLog], status: str) -> dict[int, list[datetime]]:
    """When a person set each issue to ``status``."""
    found: dict[int, list[datetime]] = {}
    for entry in audit:
        before, after = entry.before or {}, entry.after or {}
        if entry.action == "issue.update" and after.get("status") == status != before.get("status"):
            found.setdefault(int(entry.target_id), []).append(as_utc(entry.at))
    return found


def _lineage_times(issue: Issue, event: str) -> list[datetime]:
    records = [record for record in issue.lineage if record.get("event") == event]
    times = [as_moment(record.get("at")) for record in records]
    return [t for t in times if t is not None]


@dataclass
class LiveIssues:
    """The live (not merged) issues with what the sections ask of them, for any period."""

    issues: dict[int, Issue]
    refs: dict[int, IssueRef]
    first_seen: dict[int, datetime]
    audit: list[AuditLog]

    def new_in(self, start: datetime, end: datetime) -> list[int]:
        """Issues whose earliest ticket was written in the period."""
        return [i for i in self.issues if between(self.first_seen.get(i), start, end)]

    def resolved_in(self, start: datetime, end: datetime) -> set[int]:
        """Marked resolved by a person in the period (audit log, or ``resolved_at``)."""
        by_person = _status_changes(self.audit, IssueStatus.resolved.value)
        return {
            i
            for i, issue in self.issues.items()
            if between(as_utc(issue.resolved_at), start, end)
            or any(between(t, start, end) for t in by_person.get(i, []))
        }

    def regressed_in(self, start: datetime, end: datetime) -> dict[int, datetime]:
        """Resolved issues that took in new feedback (lineage) or that a person reopened as
        regressed, with the latest such moment in the period."""
        by_person = _status_changes(self.audit, IssueStatus.regressed.value)
        found = {}
        for i, issue in self.issues.items():
            times = _lineage_times(issue, "regressed") + by_person.get(i, [])
            inside = [t for t in times if between(t, start, end)]
            if inside:
                found[i] = max(inside)
        return found
