"""triage.preprocess imports spaCy and presidio without torch or transformers (its
``__init__``, through ``triage.imports.without_deep_learning``), and both still import
afterwards."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import triage.preprocess
from triage.preprocess import Redactor
assert "presidio_analyzer" in sys.modules
assert "transformers" not in sys.modules, "presidio's import loaded transformers"
assert "torch" not in sys.modules, "presidio's import (thinc, its device detector) loaded torch"
[redacted] = Redactor().redact(["Write to ana@example.com or call +1 415 555 0100."])
assert "<EMAIL>" in redacted and "ana@example.com" not in redacted, redacted
import transformers  # the sentence-transformers backend still can
assert sys.modules["transformers"] is transformers
import torch
assert torch.zeros(1).sum().item() == 0
print("ok")
"""


def test_presidio_imports_without_torch_or_transformers_and_both_still_import_after():
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
