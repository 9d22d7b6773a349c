"""The Keras MiniLM encoder against reference sentence-transformers vectors."""

import json
from pathlib import Path

import numpy as np
import pytest

from retrieval_service.encoder import SentenceEncoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder.pretrained()


@pytest.fixture(scope="module")
def reference():
    # Generated once with sentence-transformers + torch by scripts/generate_reference_embeddings.py.
    return json.loads((FIXTURES / "minilm_reference.json").read_text())


def test_matches_sentence_transformers(encoder, reference):
    ours = encoder.encode(reference["sentences"])
    theirs = np.asarray(reference["embeddings"], dtype=np.float32)
    cosine = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert cosine.min() >= 0.9999, cosine


def test_vectors_are_unit_length_float32(encoder):
    vectors = encoder.encode(["one", "two words", "a somewhat longer sentence about trees"])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors(encoder):
    texts = ["short", "a much longer text " * 20, "medium length question here?"]
    batched = encoder.encode(texts, batch_size=3)
    single = np.concatenate([encoder.encode([t]) for t in texts])
    assert np.abs(batched - single).max() < 1e-5


def test_long_texts_are_truncated_not_rejected(encoder):
    assert encoder.encode(["word " * 5000]).shape == (1, 384)


def test_save_load_round_trip(encoder, tmp_path, reference):
    encoder.save(tmp_path / "encoder")
    loaded = SentenceEncoder.load(tmp_path / "encoder")
    texts = reference["sentences"]
    assert np.abs(loaded.encode(texts) - encoder.encode(texts)).max() < 1e-6
    assert loaded.max_length == encoder.max_length


def test_rejects_bad_max_length(encoder):
    with pytest.raises(ValueError, match="max_length"):
        SentenceEncoder(encoder.backbone, encoder.tokenizer, max_length=4)
