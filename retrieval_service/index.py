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


def set_threads(n: int) -> None:
    """Cap FAISS's OpenMP threads so it does not oversubscribe the cores next to TensorFlow."""
    faiss.omp_set_num_threads(max(1, n))


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
