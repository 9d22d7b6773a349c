"""The loaded ranking stage: reranker + per-answer table + answer store of one artifact bundle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common import manifest as mf
from common.answers import AnswerStore
from ranking_service.features import FEATURE_NAMES, AnswerTable
from ranking_service.lexical import BM25
from ranking_service.model import RerankerScorer, load_reranker
from retrieval_service.encoder import SentenceEncoder, TextEncoder

logger = logging.getLogger(__name__)

REQUIRED_FILES = (mf.ENCODER_DIR, mf.RERANKER_FILE, mf.EMBEDDINGS_FILE, mf.LEXICAL_FILE, mf.ANSWERS_FILE)


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
            table = AnswerTable(embeddings=embeddings, bm25=BM25.load(bundle / mf.LEXICAL_FILE), votes=votes)
            scorer = RerankerScorer(load_reranker(bundle / mf.RERANKER_FILE), table)
        except ValueError as exc:
            raise mf.ArtifactError(f"inconsistent bundle {bundle}: {exc}. {mf.HOW_TO_FIX}") from None
        encoder = SentenceEncoder.load(bundle / mf.ENCODER_DIR)
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
        if question_embedding is None:
            question_embedding = self.encoder.encode([question])[0]
        row_array = np.asarray(rows, dtype=np.int64)
        scores, dense = self.scorer.score(question, question_embedding.astype(np.float32), row_array)
        order = np.argsort(-scores, kind="stable")
        dense_rank = np.empty(len(rows), dtype=np.int64)
        dense_rank[np.argsort(-dense, kind="stable")] = np.arange(1, len(rows) + 1)
        return order, scores, dense, dense_rank

    def warm_up(self) -> None:
        """Trace the reranker (and question encoder) graphs before the first request."""
        n = len(self.store)
        for size in (1, min(n, 100)):
            self.rank("warm up question", list(range(size)), None)
