"""Where triage keeps what it derives once per machine: the user cache (XDG), so every working
directory and every process shares one copy (the ONNX export, the census names table)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(name: str) -> Path:
    """``$XDG_CACHE_HOME/triage/<name>``, or ``~/.cache/triage/<name>`` when that is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "triage" / name
