"""``triage keys``: API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from triage import db, store
from triage.cli.app import _errors, _ready, console, out
from triage.config import get_settings
from triage.models import Scope

keys_app = typer.Typer(help="API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    scope: Annotated[Scope, typer.Option(help="ingest: push data; read: pull; admin: both+edit")],
    name: Annotated[str, typer.Option(help="Who or what uses the key.")] = "",
    source: Annotated[
        list[str] | None,
        typer.Option(
            help="Bind an ingest key to a source it may write (repeat for several); unset: any."
        ),
    ] = None,
) -> None:
    """Make an API key. The key is printed once, on the last line, and stored only as a hash."""
    with _errors():
        engine = _ready(get_settings(), write=True)
        with db.session_scope(engine) as session:
            key, secret = store.create_api_key(
                session, scope=scope, name=name, sources=source or ()
            )
    bound = f", sources {', '.join(key.sources)}" if key.sources else ""
    console.print(
        f"created key {key.id} ({key.scope}{', ' + name if name else ''}{bound}); keep it safe:"
    )
    print(secret)


@keys_app.command("list")
def keys_list() -> None:
    """Show keys without their secrets."""
    with _errors():
        engine = _ready(get_settings())
        with db.session_scope(engine) as session:
            keys = store.list_api_keys(session)
    table = Table("id", "name", "scope", "sources", "prefix", "created", "last used", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.scope,
            ", ".join(key.sources or ["any"]) if key.scope == "ingest" else "",
            key.prefix + "…",
            str(key.created_at)[:19],
            str(key.last_used_at or "")[:19],
            str(key.revoked_at or "")[:19],
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: int,
    wait: Annotated[
        float,
        typer.Option(
            min=0,
            help="Seconds to wait, retrying, while another process (the worker) is writing to "
            "the database; then an error, and the key stays valid.",
        ),
    ] = 60.0,
) -> None:
    """Stop a key from working: at once in the database; a running API process trusts a key it
    has already looked up for TRIAGE_API_KEY_CACHE_SECONDS more."""
    settings = get_settings()
    with _errors():
        engine = _ready(settings)
        db.write_retrying(
            engine,
            lambda session: store.revoke_api_key(session, key_id=key_id),
            wait=wait,
            what=f"key {key_id} was not revoked",
        )
    cached = settings.api_key_cache_seconds
    console.print(
        f"key {key_id} revoked"
        + (f"; running API processes refuse it within {cached:g} s" if cached else "")
    )
