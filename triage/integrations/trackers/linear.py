"""Linear through its GraphQL API: the ``issueCreate`` mutation with the description in
Markdown. A personal API key goes in ``Authorization`` as it is, an OAuth access token after
``Bearer``, as Linear documents them."""

from __future__ import annotations

from typing import Any

import httpx

from triage.errors import TrackerError
from triage.integrations.trackers._base import (
    CreatedTicket,
    IssueTracker,
    Ticket,
    post_json,
    vendor_message,
)
from triage.integrations.trackers.ticket import markdown

ISSUE_CREATE = (
    "mutation IssueCreate($input: IssueCreateInput!) {"
    " issueCreate(input: $input) { success issue { id identifier url } } }"
)
PERSONAL_KEY_PREFIX = "lin_api_"


class LinearTracker(IssueTracker):
    name = "linear"
    label = "Linear"

    def __init__(self, *, api_url: str, token: str, team_id: str) -> None:
        self.api_url = api_url
        self.token = token
        self.team_id = team_id

    def create(self, ticket: Ticket, client: httpx.Client) -> CreatedTicket:
        personal = self.token.startswith(PERSONAL_KEY_PREFIX)
        answer = post_json(
            self,
            client,
            self.api_url,
            body={
                "query": ISSUE_CREATE,
                "variables": {
                    "input": {
                        "teamId": self.team_id,
                        "title": ticket.title,
                        "description": markdown(ticket),
                    }
                },
            },
            headers={"Authorization": self.token if personal else f"Bearer {self.token}"},
            settings_hint="TRIAGE_LINEAR_TOKEN and TRIAGE_LINEAR_TEAM_ID",
        )
        # GraphQL reports a refused mutation with HTTP 200 and an "errors" list.
        created: Any = (answer.get("data") or {}).get("issueCreate") or {}
        issue = created.get("issue") or {}
        if answer.get("errors") or not created.get("success") or not issue.get("url"):
            said = vendor_message(answer) or "issueCreate did not succeed"
            raise TrackerError(
                f"Linear refused the ticket: {said} (check TRIAGE_LINEAR_TEAM_ID is the team's "
                "UUID and TRIAGE_LINEAR_TOKEN can create issues in it)."
            )
        return CreatedTicket(
            ticket_id=str(issue.get("id")), key=str(issue.get("identifier")), url=issue["url"]
        )
