"""Python's cyclic garbage collector, paused for the length of a refresh.

A refresh builds hundreds of thousands of small objects (each ticket's signal scores, evidence
and probabilities) that stay alive until it ends. The collector counts allocations and, each time
the objects alive have grown by a quarter, walks all of them looking for cycles: on 10,000 tickets
those walks took about 1.5 s of an 11 s refresh, and found nothing to free. Reference counting
still frees every object that is not in a cycle the moment it is let go; what is in a cycle
waits for the first collection after the refresh. Only the process that refreshes (``triage
run``, the worker) pauses: the API runs its worker as a child process.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block, then restore it as it was (a block inside
    another leaves it paused)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
