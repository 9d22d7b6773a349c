"""Evaluation: every system under the reference protocol, plus where the gains hold and the ceiling.

Protocol: query = question title; a hit = the question's own first answer; pool = every corpus answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ranking_service.lexical import BM25, tokenize
from training.metrics import gold_ranks, retrieval_metrics

HEADLINE = ("recall@1", "recall@10", "mrr@10")


def bm25_rankings(bm25: BM25, queries: Sequence[str], depth: int) -> npt.NDArray[np.int64]:
    """Whole-corpus BM25 top `depth` rows per query: (n_queries, depth)."""
    return np.stack([np.argsort(-bm25.score_all(q), kind="stable")[:depth] for q in queries])


def title_overlap(queries: Sequence[str], training_titles: Sequence[str]) -> npt.NDArray[np.float64]:
    """Each query's highest Jaccard overlap of title terms with any training title: (n_queries,).

    Low values mark questions worded unlike anything the models were trained on.
    """
    inverted: dict[str, list[int]] = {}
    train_sets = [set(tokenize(t)) for t in training_titles]
    for i, terms in enumerate(train_sets):
        for term in terms:
            inverted.setdefault(term, []).append(i)
    best = np.zeros(len(queries))
    for qi, query in enumerate(queries):
        terms = set(tokenize(query))
        candidates = {i for term in terms for i in inverted.get(term, ())}
        for i in candidates:
            union = len(terms | train_sets[i])
            best[qi] = max(best[qi], len(terms & train_sets[i]) / union if union else 0.0)
    return best


def near_duplicate_rate(
    query_vectors: npt.NDArray[np.float32],
    other_vectors: npt.NDArray[np.float32],
    query_gold: npt.NDArray[np.int64],
    other_gold: npt.NDArray[np.int64],
    threshold: float = 0.9,
) -> float:
    """Share of queries with a near-identical other question (title cosine >= threshold) whose
    answer is a different corpus entry: for those, the protocol's single gold label is arguably
    wrong about half the time, which caps recall@1 below 1."""
    sims = query_vectors @ other_vectors.T  # (n_queries, n_other)
    near = (sims >= threshold) & (query_gold[:, None] != other_gold[None, :])
    return float(near.any(axis=1).mean()) if len(query_gold) else 0.0


def evaluate_systems(
    rankings: dict[str, npt.NDArray[np.int64]],
    gold: npt.NDArray[np.int64],
    overlap: npt.NDArray[np.float64] | None = None,
    low_overlap_below: float = 0.25,
) -> dict:
    """Metrics of every system; with `overlap`, also on the low-overlap subset of queries."""
    result: dict = {
        "num_queries": int(len(gold)),
        "systems": {name: retrieval_metrics(gold_ranks(rows, gold)) for name, rows in rankings.items()},
    }
    if overlap is not None:
        low = overlap < low_overlap_below
        result["low_overlap"] = {
            "definition": f"max title-term Jaccard with any training title < {low_overlap_below}",
            "num_queries": int(low.sum()),
            "systems": {
                name: {m: v for m, v in retrieval_metrics(gold_ranks(rows[low], gold[low])).items() if m in HEADLINE}
                for name, rows in rankings.items()
            }
            if low.any()
            else {},
        }
    return result


def ambiguous_misses(
    top1_rows: npt.NDArray[np.int64],
    gold: npt.NDArray[np.int64],
    query_vectors: npt.NDArray[np.float32],
    question_vectors: npt.NDArray[np.float32],
    question_gold_rows: npt.NDArray[np.int64],
    self_index: npt.NDArray[np.int64],
    thresholds: Sequence[float] = (0.8, 0.9),
) -> dict[str, float]:
    """How many top-1 misses returned an answer written for a question that asks nearly the same.

    Analysis only (the models never see an answer's own question): for each query whose top-1 is
    not its gold answer, the highest title cosine between the query and the questions the returned
    answer was written for. Above a threshold, the miss is most likely label noise of the
    single-gold protocol rather than a wrong answer: counting such misses as hits would raise
    recall@1 by their share, and the remaining misses are ranking errors.

    Args:
        top1_rows: (n,) each query's top-ranked answer row.
        gold: (n,) each query's gold row.
        query_vectors: (n, dim) the queries.
        question_vectors: (m, dim) every question of the data (train and eval).
        question_gold_rows: (m,) the answer row each of those questions was asked for.
        self_index: (n,) each query's own position in `question_vectors` (skipped).
    """
    asked_for: dict[int, list[int]] = {}
    for j, row in enumerate(question_gold_rows):
        asked_for.setdefault(int(row), []).append(j)
    best = np.full(len(gold), -1.0)
    for i in np.flatnonzero(top1_rows != gold):
        others = [j for j in asked_for.get(int(top1_rows[i]), ()) if j != self_index[i]]
        if others:
            best[i] = float((question_vectors[others] @ query_vectors[i]).max())
    out = {"top1_misses": float((top1_rows != gold).mean())}
    for t in thresholds:
        out[f"misses_to_question_cosine_ge_{t}"] = float((best >= t).mean())
    return out
