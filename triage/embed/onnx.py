"""The pinned model, quantised to int8 and run by ONNX Runtime: the default backend.

Exported here with torch.onnx from the verified local folder, never from a hub (optimum's
exporter would pin transformers<4.58 and pull sentence-transformers back to 5.x). Runs without
torch: the tokenizer comes from tokenizer.json, pooling and normalisation are numpy; torch is
imported only for the one-off export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from triage.embed.base import Embedder
from triage.embed.pin import default_model_path, load_pin, verify_model_folder
from triage.errors import ModelNotFoundError
from triage.paths import user_cache

ONNX_FORMAT = 3  # bump when the export or quantisation recipe changes, so old caches are redone
ONNX_FILE = "model-int8.onnx"
MANIFEST_FILE = "manifest.json"
# Its vectors differ slightly from torch's, so they are cached under a model_id of their own;
# "-w7" since format 3 (7-bit weights, below), whose vectors are not format 2's: a database
# embedded with "-onnx-int8" is embedded again by its next refresh, never mixed.
MODEL_ID_SUFFIX = "-onnx-int8-w7"
# Every model id an export of the base model has had, newest first (``factory.base_model``).
EXPORT_SUFFIXES = (MODEL_ID_SUFFIX, "-onnx-int8")


def default_onnx_cache_root() -> Path:
    """The user cache (XDG), so every working directory shares one export."""
    return user_cache("onnx")


def _export_int8_onnx(folder: Path, target: Path) -> None:
    """Write ``target/model-int8.onnx``: the transformer of the model in ``folder`` (token
    vectors out; pooling stays outside), weights dynamically quantised to signed int8."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    # eager attention traces to plain ops that every onnxruntime build runs.
    model = AutoModel.from_pretrained(
        str(folder), local_files_only=True, attn_implementation="eager"
    ).eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    # Traced with padding in the batch, so the mask path is the one recorded.
    example = torch.tensor([[101, 2023, 2003, 102], [101, 102, 0, 0]])
    fp32 = target / "model-fp32.onnx"
    with torch.no_grad():
        torch.onnx.export(
            TokenVectors(),
            (example, (example > 0).long(), torch.zeros_like(example)),
            str(fp32),
            input_names=names,
            output_names=["token_vectors"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "token_vectors"]},
            opset_version=17,
            dynamo=False,
        )
    # Per-channel QInt8 weights of the MatMuls only; activations are quantised per run, which is
    # what "dynamic" means. The word-embedding table (a Gather, which the default op list also
    # quantises) stays fp32: quantising it saves no time and moved vectors further from torch's
    # (mean cosine 0.9938 with it, 0.9942 without, on Banking77 test; bench.embed).
    # Weights use 7 bits (reduce_range): on an x86 CPU without VNNI, ONNX Runtime multiplies
    # uint8 activations by int8 weights with VPMADDUBSW, whose 16-bit sums of two products
    # saturate for 8-bit weights (255 x 128 x 2 > 32,767) but never for 7-bit ones. With 8 bits
    # an AVX2 machine gave vectors at mean cosine 0.9934 to torch's where an earlier machine had
    # 0.9942, so a figure measured on one machine moved on another, and replicas on two kinds
    # of CPU could fill one vector cache with two vectors per text. With 7 bits every x86 CPU
    # computes the same integers (0.9927 to torch on the AVX2 machine, at the same speed).
    # uint8 weights never saturate either (0.9943 here), but uint8 x uint8 cannot use VNNI's
    # uint8 x int8 instruction, the reason int8 runs fast on the CPUs that have it.
    quantize_dynamic(
        str(fp32),
        str(target / ONNX_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )
    fp32.unlink()


@contextmanager
def _quiet_export() -> Iterator[None]:
    """The one-off export's warnings say nothing to whoever runs triage: the tracer's
    (TracerWarning, the aten::index note) and onnxruntime's advice to pre-process before
    quantising. onnxruntime gives that advice through the root logger, whose first use would also
    install a stderr handler that then prints every library's INFO lines; a handler of our own
    on the root logger meanwhile keeps it from doing either."""
    root = logging.getLogger()
    guard = logging.NullHandler()
    root.addHandler(guard)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeHandler(guard)


def cached_onnx_model(folder: Path, *, sha256: str, cache_root: Path) -> Path:
    """The int8 model for the weights with hash ``sha256``, exported on first use.

    The cache folder is named after the hash, and its manifest repeats the full hash, so
    another model never reuses it. The export is written to a temporary folder and renamed
    into place: two processes exporting at once both finish, and one rename wins.
    """
    final = cache_root / sha256[:12]
    manifest = {"sha256": sha256, "format": ONNX_FORMAT, "file": ONNX_FILE}

    def ready() -> bool:
        try:
            found = json.loads((final / MANIFEST_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return found == manifest and (final / ONNX_FILE).is_file()

    if ready():
        return final / ONNX_FILE
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=cache_root))
    try:
        with _quiet_export():
            _export_int8_onnx(folder, tmp)
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
        if not ready():  # else another process finished first; keep its export
            if final.exists():
                # Another model's export under the same prefix, or an older recipe's.
                shutil.rmtree(final, ignore_errors=True)
            try:
                tmp.rename(final)
            except OSError:
                # Another process renamed its export in between; it is the same model.
                if not ready():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / ONNX_FILE


class OnnxEmbedder(Embedder):
    """The pinned model as a dynamically quantised int8 ONNX graph run by ONNX Runtime.

    Same maths as the sentence-transformers pipeline of all-MiniLM-L6-v2 (modules.json:
    Transformer → mean pooling over the attention mask → L2 normalisation), about 2-3x faster
    on CPU. Vectors differ slightly from torch's, so the model_id differs and the two are never
    mixed in the vector cache.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        expected_sha256: str | None = None,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
        max_seq_length: int = 256,
    ) -> None:
        pin = load_pin()
        folder = Path(path) if path is not None else default_model_path()
        expected = (expected_sha256 or pin["sha256"]).lower()
        verify_model_folder(folder, file=pin["file"], expected_sha256=expected)
        base_id = pin["model_id"] if expected == pin["sha256"] else f"{folder.name}@{expected[:12]}"
        self.model_id = f"{base_id}{MODEL_ID_SUFFIX}"
        self.path = folder
        self.dim = int(pin["dim"]) if expected == pin["sha256"] else 0
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as e:
            raise ModelNotFoundError(
                "The onnx-int8 embedding backend needs onnxruntime: "
                "pip install onnxruntime==1.32.0 onnx==1.23.2, or set "
                "TRIAGE_EMBEDDING_BACKEND=sentence-transformers."
            ) from e
        root = Path(cache_dir) if cache_dir is not None else default_onnx_cache_root()
        self.onnx_path = cached_onnx_model(folder, sha256=expected, cache_root=root)

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # tokenizer.json pads every text to 128 tokens; each text runs alone here, unpadded, cut
        # at sentence-transformers' max_seq_length (256 for this model) like encode does.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_seq_length)

        # Dynamic int8 quantisation scales activations per tensor, so a text run inside a batch
        # gets a vector that depends on its batch-mates and their padding (cosine 0.985-0.99 to
        # itself run alone, measured). Each text therefore runs alone, on one core, and
        # ``threads`` texts run at once: the vector is a function of the text (the vector cache
        # relies on that), no time goes to padding, and on 2 cores it is as fast as batches of
        # 64 sorted by length.
        self.threads = threads or os.cpu_count() or 1
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # ONNX Runtime picks the CPU's best int8 kernels (AVX2, AVX-512 VNNI, ...) at run time,
        # so one exported file is fast on every x86 or ARM machine.
        self.session = onnxruntime.InferenceSession(
            str(self.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        if not self.dim:
            self.dim = int(self.session.get_outputs()[0].shape[-1])
        self._pool: ThreadPoolExecutor | None = None

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        if self._pool is None:
            # InferenceSession.run is thread-safe and releases the GIL while it computes.
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="triage-onnx")
        encodings = self.tokenizer.encode_batch(texts)
        return np.stack(list(self._pool.map(self._embed_one, encodings)))

    def _embed_one(self, encoding: Any) -> np.ndarray:
        ids = np.array([encoding.ids], dtype=np.int64)
        (tokens,) = self.session.run(
            None,
            {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.zeros_like(ids),
            },
        )
        pooled = tokens[0].mean(axis=0)  # mean pooling: every token is a real one, no padding
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
