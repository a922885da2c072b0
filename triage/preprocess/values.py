"""Redacting structured values: the identifiers and metadata a client sent, every string in them.

Ticket text is redacted once, when it is processed, and stored redacted. Identifiers and metadata
are stored as sent, because linking needs the real ``user_id`` and ``session_id``; so they pass
the redactor on their way out, each time a client or a person reads them.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from triage.preprocess.redact import Redactor

# Results are remembered (by hash) up to this many values, then the memo starts over.
_MAX_MEMO = 50_000
# The longest field name put before a value; a longer key is cut.
_MAX_LABEL = 40
_KEY_WORDS = re.compile(r"[\s_.\-]+|(?<=[a-z])(?=[A-Z])")


@lru_cache(maxsize=4096)  # a page repeats the same few keys on every row
def _label(key: str) -> str:
    """The key as words, so "customerPhone" and "customer_phone" carry the context "phone"."""
    return _KEY_WORDS.sub(" ", key[:_MAX_LABEL]).strip().lower()


def _read(label: str | None, value: str | int) -> tuple[str, str]:
    """(prefix, value) as the redactor reads a value: its field's name on the line before.

    The name gives the context a value lacks on its own: a bare "415 555 0199" is a phone number
    only under "phone:", a "Maria Lopez" a name only under "name:". On a line of its own, the
    value still starts a line, as a sign-off such as "Thanks, Maria" must.
    """
    prefix = f"{_label(label)}:\n" if label else ""
    return prefix, str(value)


class ValueRedactor:
    """Passes every string (dict keys included, at any depth) and every integer in JSON-like
    records through a ``Redactor``; build once per process, reuse.

    A value that holds no personal data comes back exactly as it was; one that does comes back
    cleaned and redacted, an integer as a string ("<CARD>"). Results are remembered by a hash of
    what was read, never by the value itself, so reading a page again costs little and the memo
    holds no personal data.
    """

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self._memo: dict[bytes, str | None] = {}
        # Calls into presidio and spaCy are serialised: API threads share one redactor.
        self._lock = threading.Lock()

    def redact_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Each record with personal data in its values, keys and nested values replaced."""
        reads: set[tuple[str, str]] = set()
        for record in records:
            _collect(record, None, reads)
        found = self._redact(reads)
        return [_rebuild(dict(record), None, found) for record in records]

    def _redact(self, reads: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """What each read becomes: ``None`` when it holds no personal data."""
        found: dict[tuple[str, str], str | None] = {}
        todo: dict[bytes, tuple[str, str]] = {}
        memo = self._memo
        for read in reads:
            digest = _digest(read)
            if digest in memo:
                found[read] = memo[digest]
            else:
                todo[digest] = read
        if not todo:
            return found
        with self._lock:
            redacted = self.redactor.redact_with_counts(["".join(read) for read in todo.values()])
            # A personal-data key before the value ("jo@example.com:\n...") is redacted too,
            # and then the value is read again on its own.
            again = [
                read[1]
                for read, (text, counts) in zip(todo.values(), redacted, strict=True)
                if counts and not text.startswith(read[0])
            ]
            alone = iter(self.redactor.redact_with_counts(again))
        if len(memo) > _MAX_MEMO:
            # Replaced, never cleared, so another thread reading the old memo is unaffected.
            self._memo = memo = {}
        for (digest, read), (text, counts) in zip(todo.items(), redacted, strict=True):
            prefix = read[0]
            if counts and not text.startswith(prefix):
                (text, counts), prefix = next(alone), ""
            memo[digest] = found[read] = text[len(prefix) :] if counts else None
        return found


def _digest(read: tuple[str, str]) -> bytes:
    prefix, value = read
    # The prefix's length keeps ("a:\n", "b") apart from ("", "a:\nb").
    return hashlib.blake2b(f"{len(prefix)}:{prefix}{value}".encode(), digest_size=16).digest()


def _is_read(value: Any) -> bool:
    # bool is an int, and True is no card number.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _collect(value: Any, label: str | None, reads: set[tuple[str, str]]) -> None:
    if _is_read(value):
        reads.add(_read(label, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                reads.add(_read(None, key))
            _collect(item, key if isinstance(key, str) else label, reads)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, label, reads)


def _rebuild(value: Any, label: str | None, found: dict[tuple[str, str], str | None]) -> Any:
    if _is_read(value):
        replaced = found[_read(label, value)]
        return value if replaced is None else replaced
    if isinstance(value, Mapping):
        rebuilt: dict[Any, Any] = {}
        for key, item in value.items():
            name = key
            if isinstance(key, str) and (replaced := found[_read(None, key)]) is not None:
                # Two keys redacted alike ("<EMAIL>") must not overwrite each other.
                name, n = replaced, 2
                while name in rebuilt or name in value:
                    name, n = f"{replaced} ({n})", n + 1
            rebuilt[name] = _rebuild(item, key if isinstance(key, str) else label, found)
        return rebuilt
    if isinstance(value, list | tuple):
        return [_rebuild(item, label, found) for item in value]
    return value
