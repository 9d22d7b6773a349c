"""Evaluation analyses: near-duplicate questions and misses that are likely label noise."""

import numpy as np
import pytest

from training.evaluate import ambiguous_misses, near_duplicate_rate


def unit(*rows):
    m = np.asarray(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_misses_are_measured_against_the_returned_answers_question():
    # questions 0..2 asked for answers 0..2; the queries are questions 0 and 1
    questions = unit([1, 0], [0.95, 0.3], [0, 1])
    gold_of_question = np.array([0, 1, 2])
    queries, gold, self_index = questions[:2], np.array([0, 1]), np.array([0, 1])
    top1 = np.array([1, 2])  # query 0 got q1's answer (a paraphrase), query 1 got q2's (unrelated)
    out = ambiguous_misses(top1, gold, queries, questions, gold_of_question, self_index, thresholds=(0.9,))
    assert out["top1_misses"] == pytest.approx(1.0)
    assert out["misses_to_question_cosine_ge_0.9"] == pytest.approx(0.5)


def test_hits_and_the_query_itself_never_count():
    questions = unit([1, 0], [0, 1])
    out = ambiguous_misses(np.array([0]), np.array([0]), questions[:1], questions, np.array([0, 1]), np.array([0]))
    assert out["top1_misses"] == 0.0 and out["misses_to_question_cosine_ge_0.8"] == 0.0


def test_near_duplicate_rate_ignores_questions_with_the_same_answer():
    q = unit([1, 0])
    others = unit([1, 0.01], [1, 0.02])
    assert near_duplicate_rate(q, others, np.array([0]), np.array([0, 0])) == 0.0
    assert near_duplicate_rate(q, others, np.array([0]), np.array([0, 1])) == 1.0
