"""Reranker features: computed from the answer (text, votes, embedding) and the query only.

Nothing here may look at the question an answer was written for: at evaluation time that question
is the query, so any such feature would leak the answer key. Per-answer parts (embeddings, BM25
weights, votes, nearest training questions) are precomputed offline; per-request work is a few
small array operations, so 100 candidates cost well under a millisecond before the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ranking_service.lexical import BM25
from ranking_service.neighbours import NEIGHBOUR_FEATURES, QuestionNeighbours

FEATURE_NAMES = (
    "dense_score",
    "dense_gap_to_top",
    "dense_rank_log",
    "bm25",
    "bm25_relative",
    "bm25_rank_log",
    "query_term_coverage",
    "answer_length_log",
    "answer_votes_log",
    "has_votes",
) + NEIGHBOUR_FEATURES
NUM_FEATURES = len(FEATURE_NAMES)


@dataclass(frozen=True)
class AnswerTable:
    """Everything the reranker knows about the answers, indexed by corpus row.

    Attributes:
        embeddings: (n, dim) L2-normalised answer vectors (the same ones the FAISS index holds).
        bm25: BM25 weights of the answer texts.
        votes: (n,) answer score in the source data, NaN where unknown.
        neighbours: each answer's nearest training questions, its own excluded
            (ranking_service.neighbours).
    """

    embeddings: npt.NDArray[np.float32]
    bm25: BM25
    votes: npt.NDArray[np.float32]
    neighbours: QuestionNeighbours

    def __post_init__(self) -> None:
        n = self.embeddings.shape[0]
        sizes = {"bm25": self.bm25.matrix.shape[0], "votes": self.votes.shape[0], "neighbours": self.neighbours.num_answers}
        if any(size != n for size in sizes.values()):
            raise ValueError(f"answer table rows disagree: embeddings {n}, " + ", ".join(f"{k} {v}" for k, v in sizes.items()))


def _rank_log(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    ranks = np.empty(len(scores), dtype=np.float32)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(len(scores), dtype=np.float32)
    return np.log1p(ranks)


def candidate_features(
    query: str,
    query_embedding: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    table: AnswerTable,
    exclude_question: int | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Features for one query's candidate list.

    Args:
        query: the question text.
        query_embedding: (dim,) L2-normalised question vector.
        rows: (c,) corpus rows of the candidates.
        table: the per-answer data.
        exclude_question: a reference question to leave out of the neighbour features: the query
            itself while the reranker trains on training questions (never at serving time).

    Returns:
        features (c, NUM_FEATURES) and the candidates' embeddings (c, dim).
    """
    answer_vectors = table.embeddings[rows]  # (c, dim)
    dense = answer_vectors @ query_embedding.astype(np.float32)  # (c,)
    bm25, coverage = table.bm25.score_rows(query, rows)  # (c,), (c,)
    top_bm25 = float(bm25.max()) if len(bm25) else 0.0
    votes = table.votes[rows]  # (c,)
    has_votes = ~np.isnan(votes)
    features = np.stack(
        [
            dense,
            dense - dense.max(),
            _rank_log(dense),
            bm25,
            bm25 / top_bm25 if top_bm25 > 0 else np.zeros_like(bm25),
            _rank_log(bm25),
            coverage,
            np.log1p(table.bm25.doc_lengths[rows]),
            np.where(has_votes, np.sign(votes) * np.log1p(np.abs(np.nan_to_num(votes))), 0.0),
            has_votes.astype(np.float32),
        ],
        axis=1,
    ).astype(np.float32)  # (c, NUM_FEATURES - len(NEIGHBOUR_FEATURES))
    neighbours = table.neighbours.features(query_embedding, rows, dense, exclude_question)  # (c, 6)
    features = np.concatenate([features, neighbours], axis=1)  # (c, NUM_FEATURES)
    return features, answer_vectors
