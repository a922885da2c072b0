"""``triage digest``: the weekly digest."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from triage.cli.app import _errors, _ready, console
from triage.config import get_settings


class DigestFormat(StrEnum):
    html = "html"
    md = "md"


def digest(
    week: Annotated[
        str | None, typer.Option(help="ISO week, e.g. 2026-W47; the last complete one if unset.")
    ] = None,
    format: Annotated[DigestFormat, typer.Option("--format", "-f")] = DigestFormat.html,
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of stdout.", dir_okay=False)
    ] = None,
    regenerate: Annotated[
        bool, typer.Option(help="Make it again from today's data instead of the stored one.")
    ] = False,
) -> None:
    """The weekly digest (HTML or Markdown); each week's is stored once the week is closed."""
    from triage import digest as weekly

    settings = get_settings()
    with _errors():
        week = week or weekly.last_complete_week()
        engine = _ready(settings)
        stored = weekly.generate(
            engine, week=week, fmt=format.value, settings=settings, regenerate=regenerate
        )
    if stored.id is None:
        closes = weekly.closes_at(week, settings)
        console.print(
            f"digest {week} not stored: the week closes at {closes:%Y-%m-%d %H:%M} UTC, and "
            "tickets for it may still arrive; it is made from today's data until then"
        )
    if out is None:
        sys.stdout.write(stored.content)
        console.print(f"digest {week} ({format.value}) written to stdout")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(stored.content, encoding="utf-8")
    console.print(f"digest {week} ({format.value}): {out.resolve()}")
