"""The embedder the settings ask for, built in one place for the pipeline, worker and CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from triage.embed.base import Embedder
from triage.embed.fake import FakeEmbedder
from triage.embed.onnx import EXPORT_SUFFIXES, OnnxEmbedder
from triage.embed.sentence_transformers import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from triage.config import Settings


def base_model(model_id: str) -> str:
    """The model whose weights made the vectors: every int8 ONNX export shares its base model."""
    for suffix in EXPORT_SUFFIXES:
        if model_id.endswith(suffix):
            return model_id.removesuffix(suffix)
    return model_id


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_backend == "fake":
        return FakeEmbedder()
    if settings.embedding_backend == "onnx-int8":
        return OnnxEmbedder(
            settings.embedding_model_path,
            cache_dir=settings.embedding_cache_dir,
            threads=settings.embedding_threads,
            max_seq_length=settings.embedding_max_seq_length,
        )
    return SentenceTransformerEmbedder(settings.embedding_model_path)
