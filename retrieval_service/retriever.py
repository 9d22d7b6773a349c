"""The loaded retrieval stage: encoder + FAISS index + answer store of one artifact bundle."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from common import manifest as mf
from common.answers import AnswerStore
from retrieval_service import index as faiss_index
from retrieval_service.adapter import load_question_encoder
from retrieval_service.encoder import TextEncoder

logger = logging.getLogger(__name__)

REQUIRED_FILES = (mf.ENCODER_DIR, mf.INDEX_FILE, mf.ANSWERS_FILE)


@dataclass
class Retriever:
    manifest: mf.Manifest
    encoder: TextEncoder
    index: object
    store: AnswerStore

    @classmethod
    def load(cls, bundle: Path, verify_checksums: bool = True) -> Retriever:
        """Load and cross-check a bundle.

        Raises:
            ArtifactError: missing, corrupt or inconsistent artifacts.
        """
        manifest = mf.load_manifest(bundle, REQUIRED_FILES, verify_hashes=verify_checksums)
        index = faiss_index.load_index(bundle / mf.INDEX_FILE)
        store = AnswerStore.load(bundle / mf.ANSWERS_FILE)
        encoder = load_question_encoder(bundle / mf.ENCODER_DIR)
        if index.d != manifest.embedding_dim or encoder.dim != manifest.embedding_dim:
            raise mf.ArtifactError(
                f"dimension mismatch in {bundle}: index {index.d}, encoder {encoder.dim}, manifest {manifest.embedding_dim}"
            )
        if index.ntotal != len(store) or len(store) != manifest.num_answers:
            raise mf.ArtifactError(
                f"size mismatch in {bundle}: index {index.ntotal}, answers {len(store)}, manifest {manifest.num_answers}"
            )
        logger.info(
            "loaded artifact %s: %d answers, dim %d, index %s",
            manifest.artifact_version, index.ntotal, index.d, manifest.index_factory,
        )
        return cls(manifest, encoder, index, store)

    def encode(self, questions: list[str]) -> npt.NDArray[np.float32]:
        return self.encoder.encode(questions, batch_size=max(1, len(questions)))

    def search(self, embeddings: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        return faiss_index.search(self.index, embeddings, k)

    def warm_up(self) -> None:
        """Trace the encoder graph and touch the index so the first real request is not slow."""
        for batch in (["warm up"], ["warm up question one", "a second, longer warm-up question about trees"]):
            self.search(self.encode(batch), 10)


@dataclass(frozen=True)
class Query:
    """One request's share of a batch: its questions and how many candidates each wants."""

    questions: list[str]
    k: int


@dataclass(frozen=True)
class Hits:
    """One request's results, and the retriever (artifact version) that produced them.

    Rows index `retriever.store`; -1 marks an empty slot (fewer answers than k).
    """

    retriever: Retriever
    embeddings: npt.NDArray[np.float32]  # (n_questions, dim)
    scores: npt.NDArray[np.float32]  # (n_questions, k)
    rows: npt.NDArray[np.int64]  # (n_questions, k)


def retrieve_batch(retriever: Retriever, queries: list[Query]) -> list[Hits]:
    """Serve several requests with one encoder call, and one search per distinct k.

    Searching each k separately gives every request the neighbours a search of its own would, for
    any index type (approximate indexes may reorder when asked for more neighbours).
    """
    bounds = np.cumsum([0] + [len(query.questions) for query in queries])  # request i: bounds[i]:bounds[i+1]
    embeddings = retriever.encode([question for query in queries for question in query.questions])  # (n, dim)
    by_k: dict[int, list[int]] = {}
    for i, query in enumerate(queries):
        by_k.setdefault(query.k, []).append(i)
    hits: list[Hits | None] = [None] * len(queries)
    for k, members in by_k.items():
        picked = np.concatenate([np.arange(bounds[i], bounds[i + 1]) for i in members])
        scores, rows = retriever.search(embeddings[picked], k)  # (len(picked), k) each
        offset = 0
        for i in members:
            own = slice(offset, offset + len(queries[i].questions))
            hits[i] = Hits(retriever, embeddings[bounds[i] : bounds[i + 1]], scores[own], rows[own])
            offset = own.stop
    return hits  # type: ignore[return-value]  # every slot filled above
