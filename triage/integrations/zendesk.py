"""Zendesk webhooks as tickets: event subscriptions and trigger bodies.

Two shapes arrive at one URL:

- an event (``{"type": "zen:event-type:ticket.created", "detail": {...}, "event": {...}}``), whose
  shape Zendesk defines: ids are strings, the ticket is in ``detail``, a new comment in
  ``event.comment``;
- a trigger or automation body (``{"ticket": {...}}``), which the admin writes from Zendesk
  placeholders. The README gives the body to paste; since it is typed by hand, keys we do not
  read come back as warnings.

A ticket is its subject and description; each later public comment by the requester's side is a
ticket of its own, ``<ticket id>#<comment id>``, so a conversation's new turns are heard.
"""

from __future__ import annotations

from typing import Any

from triage.integrations.html import to_text
from triage.integrations.tickets import (
    Tickets,
    as_dict,
    as_id,
    as_time,
    build,
    ignored,
    join_text,
)
from triage.models import FieldWarning

SOURCE = "zendesk"
EVENT_PREFIX = "zen:event-type:"
TICKET_CREATED = "zen:event-type:ticket.created"
COMMENT_ADDED = "zen:event-type:ticket.comment_added"

# The trigger body's keys (README, Zendesk); `title` is what the {{ticket.title}} placeholder is
# called, so either name is read as the subject.
TRIGGER_FIELDS = {
    "id", "subject", "title", "description", "created_at", "requester_id", "organization_id",
    "url", "tags", "status", "priority", "via",
}  # fmt: skip


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, "", [])}


def from_payload(payload: Any) -> Tickets:
    if not isinstance(payload, dict):
        return ignored("The body is not a JSON object.")
    kind = payload.get("type")
    if isinstance(kind, str) and kind.startswith(EVENT_PREFIX):
        return from_event(payload)
    if isinstance(payload.get("ticket"), dict):
        return from_trigger(payload["ticket"])
    return ignored(
        "Neither a Zendesk event (a 'type' of zen:event-type:...) nor a trigger body "
        '({"ticket": {...}}, README, Zendesk).'
    )


def from_event(payload: dict[str, Any]) -> Tickets:
    kind = payload["type"]
    detail = as_dict(payload.get("detail"))
    event = as_dict(payload.get("event"))
    ticket_id = as_id(detail.get("id"))
    if kind not in (TICKET_CREATED, COMMENT_ADDED):
        return ignored(f"{kind} carries no new customer text; only ticket.created and "
                       "ticket.comment_added are stored.")  # fmt: skip
    if ticket_id is None:
        return ignored(f"{kind} without a ticket id in detail.id.")
    via = as_dict(detail.get("via"))
    meta = _compact({
        "zendesk_event_id": payload.get("id"),
        "zendesk_event": kind.removeprefix(EVENT_PREFIX),
        "channel": via.get("channel"),
        "tags": detail.get("tags"),
        "priority": detail.get("priority"),
        "ticket_type": detail.get("type"),
    })  # fmt: skip
    common = {"source": SOURCE, "customer_id": as_id(detail.get("organization_id"))}
    if kind == TICKET_CREATED:
        record = {
            **common,
            "external_id": ticket_id,
            "text": join_text(detail.get("subject"), to_text(detail.get("description") or "")),
            "created_at": as_time(detail.get("created_at")),
            "user_id": as_id(detail.get("requester_id")),
            "metadata": meta,
        }
        return Tickets(items=[build(record, what=f"Zendesk ticket {ticket_id}")])

    comment = as_dict(event.get("comment"))
    author = as_dict(comment.get("author"))
    comment_id = as_id(comment.get("id"))
    if comment_id is None:
        return ignored("ticket.comment_added without event.comment.id.")
    if comment.get("is_public") is False or author.get("is_staff") is True:
        # An agent's reply or an internal note says what support thinks, not what the customer
        # reported; clustering it would count support's words as customer feedback.
        return ignored("A comment by an agent, or an internal note: not customer feedback.")
    body = to_text(str(comment.get("body") or ""))
    if not body.strip():
        return ignored("A comment with no text (an attachment alone).")
    if body.strip() == to_text(str(detail.get("description") or "")).strip():
        # A new ticket's first comment is its description, stored with ticket.created.
        return ignored("The ticket's first comment, stored with ticket.created.")
    record = {
        **common,
        "external_id": f"{ticket_id}#{comment_id}",
        "text": body,
        "created_at": as_time(payload.get("time")),
        "user_id": as_id(author.get("id")) or as_id(detail.get("requester_id")),
        "metadata": {**meta, "zendesk_ticket_id": ticket_id},
    }
    return Tickets(items=[build(record, what=f"Zendesk comment {ticket_id}#{comment_id}")])


def from_trigger(ticket: dict[str, Any]) -> Tickets:
    warnings = [
        FieldWarning(field=f"ticket.{key}", message="Unknown field, ignored (README, Zendesk).")
        for key in ticket
        if key not in TRIGGER_FIELDS
    ]
    ticket_id = as_id(ticket.get("id"))
    if ticket_id is None:
        return Tickets(warnings=warnings, ignored="A trigger body without ticket.id.")
    tags = ticket.get("tags")
    record = {
        "source": SOURCE,
        "external_id": ticket_id,
        "text": join_text(
            to_text(str(ticket.get("subject") or ticket.get("title") or "")),
            to_text(str(ticket.get("description") or "")),
        ),
        "created_at": as_time(ticket.get("created_at")),
        "user_id": as_id(ticket.get("requester_id")),
        "customer_id": as_id(ticket.get("organization_id")),
        "metadata": _compact({
            "url": ticket.get("url"),
            # {{ticket.tags}} renders as one space-separated string.
            "tags": tags.split() if isinstance(tags, str) else tags,
            "status": ticket.get("status"),
            "priority": ticket.get("priority"),
            "channel": ticket.get("via"),
        }) or None,
    }  # fmt: skip
    return Tickets(items=[build(record, what=f"Zendesk ticket {ticket_id}")], warnings=warnings)
