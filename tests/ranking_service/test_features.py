"""Reranker features: shapes, values, and that they use only the query and the answer table."""

import numpy as np
import pytest

from ranking_service.features import FEATURE_NAMES, AnswerTable, candidate_features
from ranking_service.lexical import BM25

TEXTS = ["cats purr when happy", "dogs bark at night", "the sky is blue because of scattering"]


@pytest.fixture
def table():
    embeddings = np.eye(3, 4, dtype=np.float32)  # answer i points along axis i
    return AnswerTable(
        embeddings=embeddings,
        bm25=BM25.fit(TEXTS),
        votes=np.array([5, np.nan, -2], dtype=np.float32),
        hubness=np.array([0.1, 0.2, 0.3], dtype=np.float32),
    )


def column(features, name):
    return features[:, FEATURE_NAMES.index(name)]


def test_shapes_and_dense_scores(table):
    query = np.array([0.6, 0.8, 0, 0], dtype=np.float32)
    features, answers = candidate_features("why do cats purr", query, np.array([1, 0, 2]), table)
    assert features.shape == (3, len(FEATURE_NAMES)) and features.dtype == np.float32
    assert answers.shape == (3, 4)
    assert np.allclose(column(features, "dense_score"), [0.8, 0.6, 0.0])
    assert np.allclose(column(features, "dense_gap_to_top"), [0.0, -0.2, -0.8])
    assert np.allclose(column(features, "dense_rank_log"), np.log1p([0, 1, 2]))


def test_lexical_votes_and_length_features(table):
    features, _ = candidate_features("why do cats purr", np.zeros(4, np.float32), np.array([0, 1, 2]), table)
    assert column(features, "bm25")[0] > 0 and column(features, "bm25")[1] == 0
    assert column(features, "bm25_relative")[0] == pytest.approx(1.0)
    assert column(features, "query_term_coverage")[0] == pytest.approx(1.0)  # "cats", "purr"
    assert column(features, "has_votes").tolist() == [1.0, 0.0, 1.0]
    assert column(features, "answer_votes_log")[0] == pytest.approx(np.log1p(5))
    assert column(features, "answer_votes_log")[2] == pytest.approx(-np.log1p(2))
    assert column(features, "answer_length_log")[2] == pytest.approx(np.log1p(4))  # sky blue because scattering
    assert np.allclose(column(features, "answer_hubness"), [0.1, 0.2, 0.3])


def test_features_do_not_depend_on_candidate_order(table):
    query = np.array([0.5, 0.5, 0.7, 0], dtype=np.float32)
    a, _ = candidate_features("blue sky", query, np.array([0, 1, 2]), table)
    b, _ = candidate_features("blue sky", query, np.array([2, 0, 1]), table)
    assert np.allclose(a[[2, 0, 1]], b)


def test_table_rows_must_agree():
    with pytest.raises(ValueError, match="disagree"):
        AnswerTable(
            embeddings=np.zeros((2, 4), np.float32),
            bm25=BM25.fit(TEXTS),
            votes=np.zeros(3, np.float32),
            hubness=np.zeros(3, np.float32),
        )
