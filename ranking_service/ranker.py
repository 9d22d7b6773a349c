"""The loaded ranking stage: reranker + per-answer table + answer store of one artifact bundle."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common import manifest as mf
from common.answers import AnswerStore
from common.errors import InvalidInput, ServiceError, VersionMismatch
from ranking_service.features import FEATURE_NAMES, AnswerTable
from ranking_service.lexical import BM25
from ranking_service.model import RerankerScorer, load_reranker
from ranking_service.neighbours import load_neighbours
from retrieval_service.adapter import load_question_encoder
from retrieval_service.encoder import TextEncoder

logger = logging.getLogger(__name__)

REQUIRED_FILES = (
    mf.ENCODER_DIR, mf.RERANKER_FILE, mf.EMBEDDINGS_FILE, mf.LEXICAL_FILE, mf.ANSWER_STATS_FILE, mf.ANSWERS_FILE
)


@dataclass
class Ranker:
    manifest: mf.Manifest
    scorer: RerankerScorer
    store: AnswerStore
    encoder: TextEncoder  # only for questions that arrive without an embedding

    @classmethod
    def load(cls, bundle: Path, verify_checksums: bool = True) -> Ranker:
        """Load and cross-check a bundle.

        Raises:
            ArtifactError: missing, corrupt or inconsistent artifacts.
        """
        manifest = mf.load_manifest(bundle, REQUIRED_FILES, verify_hashes=verify_checksums)
        if tuple(manifest.reranker_features) != FEATURE_NAMES:
            raise mf.ArtifactError(
                f"{bundle} was trained with reranker features {manifest.reranker_features}, this code computes "
                f"{list(FEATURE_NAMES)}. {mf.HOW_TO_FIX}"
            )
        store = AnswerStore.load(bundle / mf.ANSWERS_FILE)
        embeddings = np.load(bundle / mf.EMBEDDINGS_FILE)
        votes = np.asarray([np.nan if s is None else s for s in store.scores], dtype=np.float32)
        try:
            table = AnswerTable(embeddings=embeddings, bm25=BM25.load(bundle / mf.LEXICAL_FILE), votes=votes,
                                 neighbours=load_neighbours(bundle / mf.ANSWER_STATS_FILE))
            scorer = RerankerScorer(load_reranker(bundle / mf.RERANKER_FILE), table)
            if table.neighbours.questions.shape[1] != embeddings.shape[1]:
                raise ValueError(f"reference questions are {table.neighbours.questions.shape[1]}-d, "
                                 f"answer embeddings {embeddings.shape[1]}-d")
        except (ValueError, KeyError) as exc:
            raise mf.ArtifactError(f"inconsistent bundle {bundle}: {exc}. {mf.HOW_TO_FIX}") from None
        encoder = load_question_encoder(bundle / mf.ENCODER_DIR)
        if embeddings.shape != (manifest.num_answers, manifest.embedding_dim) or encoder.dim != manifest.embedding_dim:
            raise mf.ArtifactError(
                f"shape mismatch in {bundle}: embeddings {embeddings.shape}, encoder dim {encoder.dim}, "
                f"manifest ({manifest.num_answers}, {manifest.embedding_dim}). {mf.HOW_TO_FIX}"
            )
        logger.info("loaded artifact %s: %d answers, reranker over %d features", manifest.artifact_version, len(store), len(FEATURE_NAMES))
        return cls(manifest, scorer, store, encoder)

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    def rank(
        self, question: str, rows: list[int], question_embedding: npt.NDArray[np.float32] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """Order candidate rows by reranker score.

        Returns:
            order (indices into `rows`, best first), reranker scores, dense scores, and each
            candidate's 1-based rank by dense score (the retrieval order), all of length len(rows).
        """
        return self.rank_many([(question, rows, question_embedding)])[0]

    def rank_many(
        self, requests: Sequence[tuple[str, list[int], npt.NDArray[np.float32] | None]]
    ) -> list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        """`rank` for several (question, rows, question_embedding) at once: questions without an
        embedding are encoded in one call, and the reranker scores the lists together."""
        missing = [i for i, (_, _, embedding) in enumerate(requests) if embedding is None]
        encoded = dict(zip(missing, self.encoder.encode([requests[i][0] for i in missing]))) if missing else {}
        scored = self.scorer.score_many(
            [
                (question, np.asarray(encoded[i] if embedding is None else embedding, dtype=np.float32),
                 np.asarray(rows, dtype=np.int64))
                for i, (question, rows, embedding) in enumerate(requests)
            ]
        )
        out = []
        for scores, dense in scored:
            order = np.argsort(-scores, kind="stable")
            dense_rank = np.empty(len(dense), dtype=np.int64)
            dense_rank[np.argsort(-dense, kind="stable")] = np.arange(1, len(dense) + 1)
            out.append((order, scores, dense, dense_rank))
        return out

    def check(self, query: RankQuery) -> tuple[list[int], npt.NDArray[np.float32] | None]:
        """A request's candidate rows and question embedding, validated against this bundle.

        Raises:
            VersionMismatch: the request is for another artifact version.
            InvalidInput: unknown candidate ids, or an embedding of the wrong size or not unit length.
        """
        served = self.manifest.artifact_version
        if query.artifact_version is not None and query.artifact_version != served:
            raise VersionMismatch(
                f"request is for artifact version {query.artifact_version}, this service serves {served}"
            )
        rows, unknown = self.store.rows(query.ids)
        if unknown:
            more = " ..." if len(unknown) > 20 else ""
            raise InvalidInput(f"unknown candidate ids: {', '.join(unknown[:20])}{more}")
        if query.embedding is None:
            return rows, None
        if len(query.embedding) != self.dim:
            raise InvalidInput(f"question_embedding has {len(query.embedding)} values, expected {self.dim}")
        embedding = np.asarray(query.embedding, dtype=np.float32)
        if not np.isfinite(embedding).all() or not 0.5 < float(np.linalg.norm(embedding)) < 1.5:
            raise InvalidInput("question_embedding must be a finite, L2-normalised vector")
        return rows, embedding

    def warm_up(self) -> None:
        """Trace the reranker (and question encoder) graphs before the first request."""
        n = len(self.store)
        for size in (1, min(n, 100)):
            self.rank("warm up question", list(range(size)), None)


@dataclass(frozen=True)
class RankQuery:
    """One /v1/rank request's share of a batch (validated against the bundle that serves it)."""

    question: str
    ids: list[str]
    embedding: Sequence[float] | None = None  # a list, or float32 values decoded from base64
    artifact_version: str | None = None


@dataclass(frozen=True)
class Ranking:
    """One request's ranked candidates, and the ranker (artifact version) that produced them."""

    ranker: Ranker
    rows: list[int]  # the candidates' rows in ranker.store, in request order
    order: npt.NDArray[np.int64]  # indices into rows, best first
    scores: npt.NDArray[np.float32]
    dense: npt.NDArray[np.float32]
    dense_rank: npt.NDArray[np.int64]


def rank_batch(ranker: Ranker, queries: list[RankQuery]) -> list[Ranking | ServiceError]:
    """Serve several requests with one `rank_many`; a request that fails its checks gets its own error."""
    out: list[Ranking | ServiceError | None] = [None] * len(queries)
    valid: list[tuple[int, list[int], npt.NDArray[np.float32] | None]] = []
    for i, query in enumerate(queries):
        try:
            rows, embedding = ranker.check(query)
        except ServiceError as exc:
            out[i] = exc
        else:
            valid.append((i, rows, embedding))
    ranked = ranker.rank_many([(queries[i].question, rows, embedding) for i, rows, embedding in valid])
    for (i, rows, _), (order, scores, dense, dense_rank) in zip(valid, ranked):
        out[i] = Ranking(ranker, rows, order, scores, dense, dense_rank)
    return out  # type: ignore[return-value]  # every slot filled above
