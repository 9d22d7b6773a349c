"""Metrics against hand-computed values."""

import numpy as np
import pytest

from training.metrics import gold_ranks, retrieval_metrics


def test_gold_ranks_are_one_based_and_inf_when_missing():
    ranked = np.array([[5, 2, 9], [1, 3, 4], [7, 8, 6]])
    gold = np.array([2, 1, 0])
    assert gold_ranks(ranked, gold).tolist() == [2.0, 1.0, np.inf]


def test_metrics_hand_computed():
    # Gold at ranks 1, 3, 12 and absent.
    ranks = np.array([1.0, 3.0, 12.0, np.inf])
    m = retrieval_metrics(ranks, cutoffs=(1, 3, 10, 20))
    assert m["recall@1"] == pytest.approx(0.25)
    assert m["recall@3"] == pytest.approx(0.5)
    assert m["recall@10"] == pytest.approx(0.5)
    assert m["recall@20"] == pytest.approx(0.75)
    assert m["precision@1"] == pytest.approx(0.25)
    assert m["precision@3"] == pytest.approx(0.5 / 3)
    assert m["precision@20"] == pytest.approx(0.75 / 20)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 3) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4)) / 4)


def test_metrics_reject_empty_input():
    with pytest.raises(ValueError, match="no queries"):
        retrieval_metrics(np.array([]))


def test_gold_ranks_shape_mismatch():
    with pytest.raises(ValueError, match="ranked lists"):
        gold_ranks(np.zeros((2, 3), dtype=np.int64), np.zeros(3, dtype=np.int64))
