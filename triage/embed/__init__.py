"""Stage "embed": units in, one L2-normalised float32 vector per unit out.

An implementation writes only ``embed_batch``; ``Embedder.embed`` does the batching, the
progress callback and the shape checks (the split simonw/llm uses). Vectors are cached by
``(text_hash(text), model_id)`` in the database, so a text seen twice is embedded once.

``base`` the interface · ``cache`` content hashes and the vector cache · ``pin`` the pinned local
model · ``onnx`` the int8 default · ``sentence_transformers`` the torch reference · ``fake`` for
tests · ``factory`` the embedder the settings ask for.
"""

from triage.embed.base import Embedder
from triage.embed.cache import (
    CachedVectors,
    embed_with_cache,
    text_hash,
    vector_from_bytes,
    vector_to_bytes,
)
from triage.embed.factory import base_model, build_embedder
from triage.embed.fake import FakeEmbedder
from triage.embed.onnx import (
    MANIFEST_FILE,
    MODEL_ID_SUFFIX,
    ONNX_FILE,
    ONNX_FORMAT,
    OnnxEmbedder,
    cached_onnx_model,
    default_onnx_cache_root,
)
from triage.embed.pin import (
    PIN_FILE,
    default_model_path,
    file_sha256,
    load_pin,
    verify_model_folder,
)
from triage.embed.sentence_transformers import SentenceTransformerEmbedder

__all__ = [
    "MANIFEST_FILE",
    "MODEL_ID_SUFFIX",
    "ONNX_FILE",
    "ONNX_FORMAT",
    "PIN_FILE",
    "CachedVectors",
    "Embedder",
    "FakeEmbedder",
    "OnnxEmbedder",
    "SentenceTransformerEmbedder",
    "base_model",
    "build_embedder",
    "cached_onnx_model",
    "default_model_path",
    "default_onnx_cache_root",
    "embed_with_cache",
    "file_sha256",
    "load_pin",
    "text_hash",
    "vector_from_bytes",
    "vector_to_bytes",
    "verify_model_folder",
]
