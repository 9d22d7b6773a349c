"""`train_reranker` on hand-made candidate lists: it learns a signal the dense score lacks."""

import numpy as np
import pytest

from ranking_service.features import FEATURE_NAMES, AnswerTable
from ranking_service.lexical import BM25
from ranking_service.neighbours import build_neighbours
from training.reranker import CandidateLists, rerank, train_reranker

COVERAGE = FEATURE_NAMES.index("query_term_coverage")
DENSE = FEATURE_NAMES.index("dense_score")
N_ANSWERS, DIM, CANDIDATES = 60, 8, 10


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(N_ANSWERS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return AnswerTable(
        embeddings=vectors,
        bm25=BM25.fit([f"answer number {i}" for i in range(N_ANSWERS)]),
        votes=np.full(N_ANSWERS, np.nan, dtype=np.float32),
        neighbours=build_neighbours(vectors, vectors[:5], np.arange(5), k=2),
    )


def lists_where_coverage_marks_the_gold(n: int, seed: int) -> tuple[CandidateLists, np.ndarray]:
    """Random features, dense score uninformative; the gold alone has full query-term coverage."""
    rng = np.random.default_rng(seed)
    rows = np.stack([rng.choice(N_ANSWERS, CANDIDATES, replace=False) for _ in range(n)])  # (n, c)
    features = rng.normal(size=(n, CANDIDATES, len(FEATURE_NAMES))).astype(np.float32)
    features[..., DENSE] = 0.5 + 0.05 * features[..., DENSE]  # cosines, as retrieval gives them
    features[..., COVERAGE] = 0.0
    gold_position = rng.integers(0, CANDIDATES, size=n)
    features[np.arange(n), gold_position, COVERAGE] = 1.0
    questions = rng.normal(size=(n, DIM)).astype(np.float32)
    return CandidateLists(features, rows, questions), rows[np.arange(n), gold_position]


def test_learns_what_the_dense_score_misses_and_passes_model_options(table):
    train, train_gold = lists_where_coverage_marks_the_gold(300, seed=1)
    test, test_gold = lists_where_coverage_marks_the_gold(100, seed=2)
    model, history = train_reranker(train, train_gold, table, epochs=30, learning_rate=1e-2, seed=0, verbose=0, projection_dim=4, hidden_units=8)
    assert (model.projection_dim, model.hidden_units) == (4, 8)
    assert history["val_loss"][-1] < history["val_loss"][0]
    top1 = (rerank(model, test, table)[:, 0] == test_gold).mean()
    untrained_top1 = (test.rows[np.arange(len(test_gold)), test.features[..., DENSE].argmax(axis=1)] == test_gold).mean()
    assert top1 > 0.9 > untrained_top1 + 0.5


def test_refuses_lists_without_their_gold(table):
    lists, gold = lists_where_coverage_marks_the_gold(5, seed=3)
    with pytest.raises(ValueError, match="have their answer among the candidates"):
        train_reranker(lists, np.full(5, -1), table, epochs=1, verbose=0)
