"""The pinned model run by sentence-transformers on torch: the reference vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triage.embed.base import Embedder
from triage.embed.pin import default_model_path, load_pin, verify_model_folder


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
        self.dim = int(self.model.get_embedding_dimension())  # type: ignore[arg-type]

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=len(texts) or 1,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32)
