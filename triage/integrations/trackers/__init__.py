"""Issue trackers an issue can be exported to: one module per tracker over a tiny interface
(``_base.IssueTracker``), built here from ``Settings`` by the API and the CLI."""

from __future__ import annotations

from collections.abc import Callable

from triage.config import Settings
from triage.errors import TrackerNotConfiguredError
from triage.integrations.trackers._base import CreatedTicket, IssueTracker, Ticket
from triage.integrations.trackers.github import GitHubTracker
from triage.integrations.trackers.jira import JiraTracker
from triage.integrations.trackers.linear import LinearTracker
from triage.models import Tracker


def _need(settings: Settings, *names: str) -> dict[str, str]:
    """The named settings as plain strings; every missing one named in one message."""
    values = {}
    for name in names:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        values[name] = value
    missing = [f"TRIAGE_{name.upper()}" for name, value in values.items() if not value]
    if missing:
        raise TrackerNotConfiguredError(
            f"Set {', '.join(missing)} to export issues there; the README's 'Issues to the "
            "tracker' says where to find each value.",
            details={"missing": missing},
        )
    return values


def _github(settings: Settings) -> IssueTracker:
    v = _need(settings, "github_api_url", "github_repo", "github_token")
    return GitHubTracker(api_url=v["github_api_url"], repo=v["github_repo"],
                         token=v["github_token"])  # fmt: skip


def _jira(settings: Settings) -> IssueTracker:
    v = _need(settings, "jira_api_url", "jira_email", "jira_token", "jira_project_key",
              "jira_issue_type")  # fmt: skip
    return JiraTracker(
        api_url=v["jira_api_url"],
        email=v["jira_email"],
        token=v["jira_token"],
        project_key=v["jira_project_key"],
        issue_type=v["jira_issue_type"],
    )


def _linear(settings: Settings) -> IssueTracker:
    v = _need(settings, "linear_api_url", "linear_token", "linear_team_id")
    return LinearTracker(api_url=v["linear_api_url"], token=v["linear_token"],
                         team_id=v["linear_team_id"])  # fmt: skip


BUILDERS: dict[Tracker, Callable[[Settings], IssueTracker]] = {
    Tracker.github: _github,
    Tracker.jira: _jira,
    Tracker.linear: _linear,
}


def tracker_from_settings(tracker: Tracker, settings: Settings) -> IssueTracker:
    return BUILDERS[tracker](settings)


__all__ = ["CreatedTicket", "IssueTracker", "Ticket", "tracker_from_settings"]
