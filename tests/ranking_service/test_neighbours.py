"""Question neighbours of answers: own questions excluded, the training query excluded on request."""

import numpy as np
import pytest

from ranking_service.neighbours import NEIGHBOUR_FEATURES, SPARE_NEIGHBOURS, QuestionNeighbours, build_neighbours


def unit(*rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def column(features, name):
    return features[:, NEIGHBOUR_FEATURES.index(name)]


def test_own_questions_are_never_neighbours():
    answers = unit([1, 0], [0, 1])
    questions = unit([1, 0], [0.6, 0.8], [0, 1])
    gold = np.array([0, 1, 1])  # q0 was asked for answer 0; q1 and q2 for answer 1
    nb = build_neighbours(answers, questions, gold, k=1)
    assert nb.ids[0, :2].tolist() == [1, 2]  # q0 (cosine 1.0) skipped; q1 (0.6) before q2 (0.0)
    assert nb.ids[1, 0] == 0 and (nb.ids[1, 1:] == -1).all()  # only q0 is not its own
    assert nb.sims[0, 0] == pytest.approx(0.6)


def test_depth_is_k_plus_spare_and_padded():
    nb = build_neighbours(unit([1, 0]), unit([1, 0], [0, 1]), np.array([5, 5]), k=2)
    assert nb.ids.shape == (1, 2 + SPARE_NEIGHBOURS)
    assert nb.ids[0].tolist()[:3] == [0, 1, -1]


def table():
    # one answer, three reference questions at cosines 0.9, 0.5, 0.1 to it
    questions = unit([1, 0, 0], [0, 1, 0], [0, 0, 1])
    return QuestionNeighbours(
        ids=np.array([[0, 1, 2, -1]], dtype=np.int32),
        sims=np.array([[0.9, 0.5, 0.1, 0.0]], dtype=np.float32),
        questions=questions,
        k=2,
    )


def test_hubness_means_and_closer_questions():
    query = unit([0, 1, 0])[0]
    f = table().features(query, np.array([0]), dense=np.array([0.6], dtype=np.float32))
    assert column(f, "answer_hubness")[0] == pytest.approx(0.7)  # mean of the first k=2
    assert column(f, "answer_hubness_top1")[0] == pytest.approx(0.9)
    assert column(f, "answer_hubness_top3")[0] == pytest.approx(0.5)
    assert column(f, "closer_questions_log")[0] == pytest.approx(np.log1p(1), abs=1e-3)  # only q0 beats 0.6 (a soft count)
    # query -> neighbour question hop, over the first k=2 neighbours (q0, q1): the query is q1
    assert column(f, "neighbour_question_max")[0] == pytest.approx(1.0)
    assert column(f, "neighbour_question_mean")[0] == pytest.approx(0.5)


def test_excluded_query_is_skipped_as_if_absent():
    query = unit([0, 1, 0])[0]
    f = table().features(query, np.array([0]), dense=np.array([0.6], dtype=np.float32), exclude=1)
    assert column(f, "answer_hubness")[0] == pytest.approx(0.5)  # q0 and q2
    assert column(f, "neighbour_question_max")[0] == pytest.approx(0.0)  # q1 no longer seen


def test_closer_question_count_is_smooth():
    # a float-noise change of the query's score must not move the feature by a whole count
    query = unit([0, 1, 0])[0]
    f = [table().features(query, np.array([0]), dense=np.array([d], dtype=np.float32)) for d in (0.5 - 1e-6, 0.5 + 1e-6)]
    assert column(f[0], "closer_questions_log")[0] == pytest.approx(column(f[1], "closer_questions_log")[0], abs=1e-4)


def test_answer_without_neighbours_gets_zeros():
    nb = QuestionNeighbours(ids=np.full((1, 3), -1, np.int32), sims=np.zeros((1, 3), np.float32),
                            questions=unit([1, 0]), k=2)
    f = nb.features(unit([1, 0])[0], np.array([0]), dense=np.array([0.3], dtype=np.float32))
    assert np.allclose(f, 0.0)


@pytest.mark.parametrize("k", [0, 5])
def test_k_must_fit_the_stored_depth(k):
    with pytest.raises(ValueError, match="k must be"):
        QuestionNeighbours(ids=np.zeros((1, 4), np.int32), sims=np.zeros((1, 4), np.float32),
                           questions=unit([1, 0]), k=k)


def test_ids_must_point_at_reference_questions():
    with pytest.raises(ValueError, match="past"):
        QuestionNeighbours(ids=np.array([[3]], np.int32), sims=np.zeros((1, 1), np.float32),
                           questions=unit([1, 0]), k=1)


def test_many_reference_questions_give_the_same_features():
    """Past a few times the neighbours a request needs, only those questions are compared with the
    query (`_query_sims`): the features must not change with that choice."""
    rng = np.random.default_rng(0)
    answers = unit(*rng.normal(size=(30, 8)))
    questions = unit(*rng.normal(size=(60, 8)))
    nb = build_neighbours(answers, questions, rng.integers(0, 30, 60), k=3)
    query, rows = unit(rng.normal(size=8))[0], np.array([3, 17])
    assert len(questions) <= 4 * nb.ids[rows].size  # few questions: one product with all of them
    dense = answers[rows] @ query
    # The same table with padding questions appended (never anyone's neighbour): the gathering path.
    many = np.concatenate([nb.questions, np.zeros((5000, 8), np.float32)])
    padded = QuestionNeighbours(ids=nb.ids, sims=nb.sims, questions=many, k=nb.k)
    assert np.allclose(padded.features(query, rows, dense), nb.features(query, rows, dense), atol=1e-6)
