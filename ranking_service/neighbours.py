"""Each answer's nearest training questions: the reranker's view of the answer from the question side.

Dense retrievers have "hub" answers that sit close to many questions and are rarely the right one
(the answer-side term of CSLS). Beyond that, an answer's nearest *other* questions say what it is
about in question words, and a query that is close to those questions is likely to be answered by
it (a question -> question -> answer hop).

Two rules keep these features honest:
* an answer's own question(s) are never among its neighbours: at evaluation time that question is
  the query, and using it would leak the answer key (eval answers have no question in the reference
  set at all, train answers have theirs removed, so both are on the same footing);
* while the reranker trains on training questions, the query itself is also removed from every
  candidate's neighbours (`exclude`), as a new question at serving time is never among them. Without
  this, negatives close to the training query look like hubs only during training, and the model
  learns to over-penalise them (measured by scripts/reranker_experiments.py: dev recall@1 0.532
  without this, 0.633 with it; retrieval alone is 0.604).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

NEIGHBOUR_FEATURES = (
    "answer_hubness",
    "answer_hubness_top1",
    "answer_hubness_top3",
    "closer_questions_log",
    "neighbour_question_max",
    "neighbour_question_mean",
)
# How sharply `closer_questions_log` counts a neighbour question as closer to the answer than the query
# (cosine units). A hard count would jump when float noise (batch padding in the encoder) moves the
# query's score across a neighbour's, and the same request would get a different score in a batch.
SOFT_COUNT_WIDTH = 0.01
# Neighbours stored beyond k, so that removing the query (and duplicates of it) leaves k.
SPARE_NEIGHBOURS = 6


@dataclass(frozen=True)
class QuestionNeighbours:
    """Nearest reference (training) questions of every answer, own questions excluded.

    Attributes:
        ids: (n_answers, depth) int32 rows of `questions`, nearest first; -1 pads.
        sims: (n_answers, depth) float32 cosine of the answer to each of those questions.
        questions: (n_questions, dim) float32 L2-normalised reference question vectors.
        k: how many neighbours the mean features use.
    """

    ids: npt.NDArray[np.int32]
    sims: npt.NDArray[np.float32]
    questions: npt.NDArray[np.float32]
    k: int

    def __post_init__(self) -> None:
        if self.ids.shape != self.sims.shape or self.ids.ndim != 2:
            raise ValueError(f"neighbour ids {self.ids.shape} and sims {self.sims.shape} must be the same 2-d shape")
        if self.k < 1 or self.k > self.ids.shape[1]:
            raise ValueError(f"k must be in [1, {self.ids.shape[1]}], got {self.k}")
        if self.ids.size and int(self.ids.max()) >= len(self.questions):
            raise ValueError(f"neighbour ids point past the {len(self.questions)} reference questions")

    @property
    def num_answers(self) -> int:
        return self.ids.shape[0]

    def features(
        self,
        query_embedding: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int64],
        dense: npt.NDArray[np.float32],
        exclude: int | None = None,
    ) -> npt.NDArray[np.float32]:
        """(c, len(NEIGHBOUR_FEATURES)) features of one query's candidates.

        Args:
            query_embedding: (dim,) the query vector.
            rows: (c,) candidate answer rows.
            dense: (c,) query-answer cosine of each candidate.
            exclude: a reference question to leave out (the query itself, in training only).
        """
        ids = self.ids[rows]  # (c, depth)
        sims = self.sims[rows]  # (c, depth)
        valid = ids >= 0
        if exclude is not None:
            valid &= ids != exclude
        position = np.cumsum(valid, axis=1)  # 1-based rank among the valid neighbours

        def mean_of_first(k: int) -> npt.NDArray[np.float32]:
            take = valid & (position <= k)
            return (sims * take).sum(axis=1) / np.maximum(take.sum(axis=1), 1)

        hop = self._query_sims(query_embedding.astype(np.float32), np.maximum(ids, 0))  # (c, depth)
        first_k = valid & (position <= self.k)
        has_any = first_k.any(axis=1)
        return np.stack(
            [
                mean_of_first(self.k),
                mean_of_first(1),
                mean_of_first(3),
                np.log1p((valid * _sigmoid((sims - dense[:, None]) / SOFT_COUNT_WIDTH)).sum(axis=1)),
                np.where(has_any, np.where(first_k, hop, -1.0).max(axis=1), 0.0),
                (hop * first_k).sum(axis=1) / np.maximum(first_k.sum(axis=1), 1),
            ],
            axis=1,
        ).astype(np.float32)


    def _query_sims(self, query: npt.NDArray[np.float32], ids: npt.NDArray[np.int32]) -> npt.NDArray[np.float32]:
        """Cosine of the query to the reference questions `ids` (any shape), at a cost bounded by ids.size.

        One product with every reference question is cheapest while they are few (0.2 ms for 4.5k
        questions and 100 candidates, against 0.4 ms for gathering), but it grows with the training
        set (9 ms at 100k); past a few times ids.size, only the questions needed are gathered.
        """
        if len(self.questions) <= 4 * ids.size:
            return (self.questions @ query)[ids]
        needed, where = np.unique(ids, return_inverse=True)
        return (self.questions[needed] @ query)[where].reshape(ids.shape)


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warnings for large |x|


def build_neighbours(
    answer_vectors: npt.NDArray[np.float32],
    question_vectors: npt.NDArray[np.float32],
    question_gold_rows: npt.NDArray[np.int64],
    k: int = 10,
) -> QuestionNeighbours:
    """Find each answer's nearest reference questions, its own question(s) excluded.

    Args:
        answer_vectors: (n_answers, dim) L2-normalised.
        question_vectors: (n_questions, dim) L2-normalised reference (training) questions.
        question_gold_rows: (n_questions,) the answer row each question was asked for.
        k: neighbours the mean features use; `k + SPARE_NEIGHBOURS` are stored.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    depth = k + SPARE_NEIGHBOURS
    n = len(answer_vectors)
    ids = np.full((n, depth), -1, dtype=np.int32)
    sims = np.zeros((n, depth), dtype=np.float32)
    if len(question_vectors):
        # Exact search, in blocks to bound memory: (block, n_questions) at a time.
        own_limit = np.bincount(question_gold_rows, minlength=n).max()  # most questions one answer has
        search = min(depth + int(own_limit), len(question_vectors))
        for start in range(0, n, 1024):
            block = answer_vectors[start : start + 1024] @ question_vectors.T  # (block, n_questions)
            top = np.argpartition(-block, search - 1, axis=1)[:, :search]
            top_sims = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-top_sims, axis=1, kind="stable")
            top, top_sims = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_sims, order, axis=1)
            own = question_gold_rows[top] == np.arange(start, start + len(block))[:, None]
            for i in range(len(block)):
                kept = top[i][~own[i]][:depth]
                ids[start + i, : len(kept)] = kept
                sims[start + i, : len(kept)] = top_sims[i][~own[i]][:depth]
    return QuestionNeighbours(ids=ids, sims=sims, questions=question_vectors.astype(np.float32), k=min(k, depth))


def load_neighbours(path) -> QuestionNeighbours:
    """Read what `training.bundle` wrote to answer_stats.npz.

    Raises:
        KeyError: an array is missing; ValueError: the arrays disagree.
    """
    with np.load(path) as data:
        return QuestionNeighbours(
            ids=data["neighbour_ids"], sims=data["neighbour_sims"], questions=data["reference_questions"],
            k=int(data["k"]),
        )
