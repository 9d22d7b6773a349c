"""Ranking metrics for the reference protocol: one relevant answer per query.

With a single relevant item, precision@K = hit@K / K, recall@K = hit@K, MRR@10 = 1/rank (0 past
10), nDCG@10 = 1/log2(rank + 1) (the ideal DCG is 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

CUTOFFS = (1, 3, 5, 10, 20, 100)


def gold_ranks(ranked_rows: npt.NDArray[np.int64], gold: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """1-based rank of each query's gold row in its ranked list; inf when absent.

    Args:
        ranked_rows: (n_queries, depth) corpus rows, best first (-1 pads are allowed).
        gold: (n_queries,) the relevant row of each query.
    """
    if ranked_rows.shape[0] != gold.shape[0]:
        raise ValueError(f"{ranked_rows.shape[0]} ranked lists for {gold.shape[0]} gold answers")
    hits = ranked_rows == gold[:, None]  # (n_queries, depth)
    found = hits.any(axis=1)
    ranks = np.full(gold.shape[0], np.inf)
    ranks[found] = hits[found].argmax(axis=1) + 1
    return ranks


def retrieval_metrics(ranks: npt.NDArray[np.float64], cutoffs: Sequence[int] = CUTOFFS) -> dict[str, float]:
    """precision@K, recall@K for each cutoff, MRR@10 and nDCG@10 from gold ranks."""
    if ranks.size == 0:
        raise ValueError("no queries to evaluate")
    metrics: dict[str, float] = {}
    for k in cutoffs:
        hit = ranks <= k
        metrics[f"recall@{k}"] = float(hit.mean())
        metrics[f"precision@{k}"] = float(hit.mean() / k)
    top10 = ranks <= 10
    metrics["mrr@10"] = float(np.where(top10, 1.0 / ranks, 0.0).mean())
    metrics["ndcg@10"] = float(np.where(top10, 1.0 / np.log2(ranks + 1), 0.0).mean())
    return metrics
