"""The one rule for what leaves triage: every string a client or a person reads has passed the
redactor.

Ticket text is redacted when it is processed and only its redacted form is ever read. What a
client sent besides the text (``customer_id``, ``user_id``, ``session_id``, ``metadata``, ...) is
stored as sent, since linking needs the real identifiers; the API and the exports pass it through
the process's ``ValueRedactor`` on the way out. This module only hands that redactor out: it is
built on first use, because spaCy and presidio take about two seconds to load and an API process
that never reads them should not pay for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from triage.config import Settings
    from triage.preprocess.values import ValueRedactor

# Records in, the same records with every string in them redacted out (``redact_records``).
RedactRecords = Callable[[Sequence[Mapping[str, Any]]], list[dict[str, Any]]]

_SHARED: dict[Any, ValueRedactor] = {}
_LOCK = threading.Lock()


def value_redactor(settings: Settings) -> ValueRedactor:
    """The process's redactor for the preprocess configuration of ``settings``."""
    from triage.preprocess import PreprocessParams, Redactor
    from triage.preprocess.values import ValueRedactor

    params = PreprocessParams.from_settings(settings)
    with _LOCK:
        if params not in _SHARED:
            _SHARED[params] = ValueRedactor(Redactor(params))
        return _SHARED[params]


def records_redactor(settings: Settings) -> RedactRecords:
    """``redact_records`` of the process's redactor, which is built at the first call only."""

    def redact(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return value_redactor(settings).redact_records(records)

    return redact


def redact_fields(
    rows: Iterable[dict[str, Any]],
    fields: Sequence[str],
    redact: RedactRecords,
    *,
    chunk: int = 1000,
) -> Iterator[dict[str, Any]]:
    """``rows`` with every string in their ``fields`` redacted; streams, ``chunk`` rows at a
    time, so a large export stays small in memory and each value is redacted once per chunk."""
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk)):
        shown = redact([{f: row[f] for f in fields if f in row} for row in batch])
        for row, values in zip(batch, shown, strict=True):
            yield {**row, **values}
