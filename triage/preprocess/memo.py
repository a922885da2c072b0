"""A bounded per-hash cache, shared by the components that read a text's words as hashes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

# Memos keyed by orth hash grow with the vocab (each new word adds one); past this many entries
# they start over.
_MAX_MEMO = 200_000

T = TypeVar("T")


class _Memo(Generic[T]):
    """A value per hash (a word's orth, a lemma) that depends on nothing else, computed once.

    The pipeline's components read a text's words as one array of hashes and look each up here,
    instead of asking spaCy for a Token object per token. Starting over replaces the dict and
    never clears it, so another thread is never left with a key that vanished between the test
    and the lookup.
    """

    def __init__(self) -> None:
        self._values: dict[int, T] = {}

    def all(self, keys: list[int], compute: Callable[[int], T]) -> list[T]:
        """The value of each key; ``compute`` makes the ones not seen yet."""
        if len(self._values) > _MAX_MEMO:
            self.reset()
        values = self._values
        return [values[k] if k in values else self._add(values, k, compute(k)) for k in keys]

    def reset(self) -> None:
        self._values = {}

    @staticmethod
    def _add(values: dict[int, T], key: int, value: T) -> T:
        values[key] = value
        return value
