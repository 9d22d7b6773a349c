"""The hubness feature: nearest training questions, the answer's own question excluded."""

import numpy as np
import pytest

from training.reranker import answer_hubness


def test_own_question_is_excluded():
    answers = np.array([[1, 0], [0, 1]], dtype=np.float32)
    questions = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    gold = np.array([0, 1, 1])  # question 0 was asked for answer 0; questions 1 and 2 for answer 1
    hub = answer_hubness(answers, questions, gold, k=1)
    # Answer 0's own question (cosine 1.0) is skipped: its nearest other question is q1 (0.6).
    # Answer 1's own questions q1 and q2 are skipped: only q0 (0.0) remains.
    assert hub.tolist() == pytest.approx([0.6, 0.0])


def test_mean_of_k_nearest():
    answers = np.array([[1, 0]], dtype=np.float32)
    questions = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    gold = np.array([5, 5, 5])  # none belongs to this answer
    assert answer_hubness(answers, questions, gold, k=2)[0] == pytest.approx(0.9)
