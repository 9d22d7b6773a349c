"""Reranker features: shapes, values, and that they use only the query and the answer table."""

import numpy as np
import pytest

from ranking_service.features import FEATURE_NAMES, AnswerTable, candidate_features
from ranking_service.lexical import BM25
from ranking_service.neighbours import build_neighbours

TEXTS = ["cats purr when happy", "dogs bark at night", "the sky is blue because of scattering"]


@pytest.fixture
def table():
    embeddings = np.eye(3, 4, dtype=np.float32)  # answer i points along axis i
    return AnswerTable(
        embeddings=embeddings,
        bm25=BM25.fit(TEXTS),
        votes=np.array([5, np.nan, -2], dtype=np.float32),
        # two reference questions, asked for answers 0 and 1
        neighbours=build_neighbours(embeddings, np.eye(2, 4, dtype=np.float32), np.array([0, 1]), k=1),
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
    # answer 0's own question is excluded, so its nearest is question 1 (cosine 0), and vice versa
    assert np.allclose(column(features, "answer_hubness"), [0.0, 0.0, 0.0])


def test_excluding_the_query_changes_only_neighbour_features(table):
    query = np.array([0.6, 0.8, 0, 0], dtype=np.float32)
    rows = np.array([0, 1, 2])
    kept, _ = candidate_features("cats", query, rows, table)
    dropped, _ = candidate_features("cats", query, rows, table, exclude_question=1)
    assert column(kept, "neighbour_question_max")[0] == pytest.approx(0.8)  # answer 0's neighbour is q1
    assert column(dropped, "neighbour_question_max")[0] == pytest.approx(0.0)  # none left
    first_neighbour_feature = FEATURE_NAMES.index("answer_hubness")
    assert np.allclose(kept[:, :first_neighbour_feature], dropped[:, :first_neighbour_feature])


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
            neighbours=build_neighbours(np.eye(3, 4, dtype=np.float32), np.eye(1, 4, dtype=np.float32), np.array([0])),
        )
