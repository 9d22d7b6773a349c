"""FAISS index: build, search, save -> load round trip."""

import numpy as np
import pytest

from retrieval_service.index import BLAS_MIN_VALUES, build_index, load_index, save_index, search, set_threads


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(200, 16)).astype(np.float32)


def test_each_vector_finds_itself_first(vectors):
    index = build_index(vectors, "Flat")
    scores, rows = search(index, vectors[:10], 5)
    assert rows[:, 0].tolist() == list(range(10))
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)  # cosine of a vector with itself
    assert (np.diff(scores, axis=1) <= 1e-6).all()


def test_round_trip_gives_identical_results(vectors, tmp_path):
    index = build_index(vectors)
    save_index(index, tmp_path / "index.faiss")
    loaded = load_index(tmp_path / "index.faiss")
    queries = vectors[50:60] + 0.1
    assert loaded.ntotal == 200 and loaded.d == 16
    assert (search(index, queries, 7)[1] == search(loaded, queries, 7)[1]).all()


def test_k_larger_than_corpus_returns_everything(vectors):
    index = build_index(vectors[:5])
    _, rows = search(index, vectors[:1], 50)
    assert sorted(rows[0].tolist()) == [0, 1, 2, 3, 4]


def test_empty_embeddings_are_rejected():
    with pytest.raises(ValueError, match="non-empty"):
        build_index(np.zeros((0, 4), dtype=np.float32))


def test_a_batch_finds_what_each_query_finds_alone():
    """With `set_threads`, a batch is scored by one BLAS product and a lone query by a SIMD scan: the
    two paths agree on the rows and, to float rounding, on the scores."""
    rng = np.random.default_rng(1)
    answers = rng.normal(size=(500, 384)).astype(np.float32)
    queries = rng.normal(size=(32, 384)).astype(np.float32)
    set_threads(1)
    index = build_index(answers)
    scores, rows = search(index, queries, 20)  # 32 x 384 values: over BLAS_MIN_VALUES
    assert queries.size >= BLAS_MIN_VALUES > queries[:1].size
    alone = [search(index, queries[i : i + 1], 20) for i in range(len(queries))]
    assert (rows == np.concatenate([r for _, r in alone])).all()
    assert np.allclose(scores, np.concatenate([s for s, _ in alone]), atol=1e-5)
