"""First-run polish: the one-off ONNX export and presidio print nothing a user did not ask for."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import triage.embed.onnx as onnx_module
from triage.embed.onnx import ONNX_FILE, cached_onnx_model


def test_quiet_logs_the_onnx_export_prints_no_warnings(tmp_path, monkeypatch, capfd):  # type: ignore[no-untyped-def]
    def noisy_export(folder: Path, target: Path) -> None:
        # What the tracer and onnxruntime's quantiser do on a real export.
        warnings.warn("Converting a tensor to a Python boolean", UserWarning, stacklevel=1)
        logging.warning("Please consider to run pre-processing before quantization.")
        (target / ONNX_FILE).write_bytes(b"onnx")

    root = logging.getLogger()
    handlers = list(root.handlers)
    monkeypatch.setattr(onnx_module, "_export_int8_onnx", noisy_export)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cached_onnx_model(tmp_path, sha256="c" * 64, cache_root=tmp_path / "cache")
    assert caught == []
    assert "pre-processing" not in capfd.readouterr().err
    # The root logger's first use did not install a stderr handler for every library's INFO.
    assert root.handlers == handlers


def test_quiet_logs_presidio_says_only_warnings():  # type: ignore[no-untyped-def]
    import triage.preprocess.redact  # noqa: F401  (sets the level on import)

    assert logging.getLogger("presidio-analyzer").getEffectiveLevel() == logging.WARNING
