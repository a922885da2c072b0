"""Intercom webhook notifications as tickets.

Every notification is ``{"type": "notification_event", "topic": ..., "data": {"item": {...}}}``;
for the conversation topics the item is the conversation. A new conversation is one ticket (its
subject and first message); each later message by the customer is a ticket of its own,
``<conversation id>#<part id>``. Bodies are HTML, always.
"""

from __future__ import annotations

from typing import Any

from triage.integrations.html import html_to_text
from triage.integrations.tickets import (
    Tickets,
    as_dict,
    as_id,
    as_time,
    build,
    ignored,
    join_text,
)

SOURCE = "intercom"
CREATED = "conversation.user.created"
REPLIED = "conversation.user.replied"
# Authors who are the customer; admins, bots and Fin speak for support.
CUSTOMER_AUTHORS = {"user", "lead", "contact"}


def _user_id(conversation: dict[str, Any], author: dict[str, Any]) -> str | None:
    # The contact's external_id is your product's own user id, the one model outputs carry, so
    # linking can find what the model showed this user; Intercom's contact id otherwise.
    contacts = as_dict(conversation.get("contacts")).get("contacts")
    first = as_dict(contacts[0]) if isinstance(contacts, list) and contacts else {}
    return as_id(first.get("external_id")) or as_id(first.get("id")) or as_id(author.get("id"))


def from_payload(payload: Any) -> Tickets:
    if not isinstance(payload, dict) or payload.get("type") != "notification_event":
        return ignored("Not an Intercom notification (type notification_event).")
    topic = payload.get("topic")
    if topic == "ping":
        return ignored("Intercom's ping: the endpoint answers, nothing to store.")
    if topic not in (CREATED, REPLIED):
        return ignored(f"Topic {topic!r} carries no new customer text; subscribe to "
                       f"{CREATED} and {REPLIED}.")  # fmt: skip
    conversation = as_dict(as_dict(payload.get("data")).get("item"))
    conversation_id = as_id(conversation.get("id"))
    if conversation_id is None:
        return ignored(f"{topic} without a conversation id in data.item.id.")
    common = {
        "source": SOURCE,
        "customer_id": as_id(as_dict(conversation.get("company")).get("id")),
        "metadata": {"intercom_topic": topic, "intercom_notification_id": payload.get("id")},
    }
    if topic == CREATED:
        source = as_dict(conversation.get("source"))
        author = as_dict(source.get("author"))
        text = join_text(
            html_to_text(str(source.get("subject") or "")),
            html_to_text(str(source.get("body") or "")),
        )
        if not text:
            # An image or attachment alone: nothing to cluster, and a 4xx would make Intercom retry.
            return ignored("A conversation whose first message has no text.")
        record = {
            **common,
            "external_id": conversation_id,
            "text": text,
            "created_at": as_time(conversation.get("created_at")),
            "user_id": _user_id(conversation, author),
        }
        return Tickets(items=[build(record, what=f"Intercom conversation {conversation_id}")])

    parts = as_dict(conversation.get("conversation_parts")).get("conversation_parts")
    items = []
    for part in parts if isinstance(parts, list) else []:
        part = as_dict(part)
        author = as_dict(part.get("author"))
        text = html_to_text(str(part.get("body") or ""))
        part_id = as_id(part.get("id"))
        if author.get("type") not in CUSTOMER_AUTHORS or not text or part_id is None:
            continue
        record = {
            **common,
            "external_id": f"{conversation_id}#{part_id}",
            "text": text,
            "created_at": as_time(part.get("created_at")),
            "user_id": _user_id(conversation, author),
        }
        items.append(build(record, what=f"Intercom message {conversation_id}#{part_id}"))
    if not items:
        return ignored("No message by the customer with text in conversation_parts.")
    return Tickets(items=items)
