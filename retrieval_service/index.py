"""FAISS answer index: built from a factory string, inner product on L2-normalised vectors (= cosine)."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

# Exact inner product is right for a corpus of a few hundred thousand answers or fewer; larger
# corpora can pass e.g. "IVF1024,Flat" or "HNSW32" through the training config.
DEFAULT_FACTORY = "Flat"


# A flat index scores a batch of queries with one BLAS matrix product once the batch holds this many
# values (queries x dim; faiss's `distance_compute_blas_threshold`), else with one SIMD scan per query.
# faiss 1.15's default, 128000, means 334 queries of 384 dims: a micro-batch of 32 questions over
# 6,524 answers took 11.9 ms scanned against 2.5 ms by BLAS (one core), while a single query is
# faster scanned (0.4 vs 1.0 ms). 1536 = BLAS from 4 questions of 384 dims on. The two summation
# orders differ in the last bits of a score (~1e-7), not in the rows found.
BLAS_MIN_VALUES = 1536


def set_threads(n: int) -> None:
    """Cap FAISS's OpenMP threads so it does not oversubscribe the cores next to TensorFlow, and let
    batched searches use BLAS (`BLAS_MIN_VALUES`)."""
    faiss.omp_set_num_threads(max(1, n))
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_VALUES


def as_float32(vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """FAISS wants C-contiguous float32 rows."""
    return np.ascontiguousarray(vectors, dtype=np.float32)


def build_index(embeddings: npt.NDArray[np.float32], factory: str = DEFAULT_FACTORY) -> faiss.Index:
    """Build an inner-product index over L2-normalised rows.

    Args:
        embeddings: (n, dim) answer vectors; normalised here again so cosine == inner product.
        factory: a FAISS index factory string.
    """
    vectors = as_float32(embeddings)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty (n, dim) array, got shape {vectors.shape}")
    faiss.normalize_L2(vectors)
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
    return index


def save_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_index(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))


def search(
    index: faiss.Index, queries: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Top-k rows per query: (scores, row ids), each (n_queries, min(k, ntotal)), best first."""
    q = as_float32(queries)
    faiss.normalize_L2(q)
    k = min(k, index.ntotal)
    scores, rows = index.search(q, k)  # (n_queries, k) each
    return scores, rows
