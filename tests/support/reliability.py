"""What a reliability test tried and checked, recorded for RELIABILITY.md.

A test calls ``note(record_property, ...)``; ``tests/support/reliability_report.py`` runs the
tests and turns the recorded lines and each test's outcome into the table, so the table is evidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

PROPERTY = "reliability"


def note(
    record_property: Callable[[str, Any], None], *, fault: str, tried: int | str, checked: str
) -> None:
    """``fault``: the fault or input; ``tried``: how many times or items; ``checked``: what
    must hold afterwards. Call it once the numbers are known (before the asserts)."""
    record_property(PROPERTY, json.dumps({"fault": fault, "tried": tried, "checked": checked}))
