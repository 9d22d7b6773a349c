"""Okapi BM25 over the answer corpus as a sparse matrix: one baseline and one reranker feature.

The (n_docs, vocab) matrix holds each term's full BM25 weight in each document, so scoring a
query is a sum of columns: the whole corpus in one sparse product, or 100 candidates by slicing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import sparse

TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# A small English stop list: BM25's idf already discounts them, but dropping them keeps the
# matrix small and the coverage feature meaningful.
STOPWORDS = frozenset(
    "a an and are as at be but by can do does did for from has have how i if in is it its of on or "
    "so than that the their them then there these they this to was we what when where which who "
    "why will with you your eli5 explain like im 5".split()
)


def tokenize(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text.lower()) if t not in STOPWORDS]


class BM25:
    """BM25 weights for a fixed corpus.

    Args:
        k1: term-frequency saturation.
        b: length normalisation.
    """

    def __init__(self, matrix: sparse.csr_matrix, vocab: dict[str, int], doc_lengths: npt.NDArray[np.float32]):
        self.matrix = matrix.tocsr()  # (n_docs, vocab)
        self.matrix_csc = self.matrix.tocsc()  # column slicing for whole-corpus scoring
        self.vocab = vocab
        self.doc_lengths = doc_lengths  # (n_docs,) tokens after stop-word removal

    @classmethod
    def fit(cls, documents: Sequence[str], k1: float = 0.9, b: float = 0.4) -> BM25:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        vocab: dict[str, int] = {}
        rows, cols, tfs = [], [], []
        lengths = np.zeros(len(documents), dtype=np.float32)
        for row, doc in enumerate(documents):
            counts = Counter(tokenize(doc))
            lengths[row] = sum(counts.values())
            for term, tf in counts.items():
                rows.append(row)
                cols.append(vocab.setdefault(term, len(vocab)))
                tfs.append(tf)
        n_docs = len(documents)
        tf = np.asarray(tfs, dtype=np.float32)
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))  # Lucene's non-negative idf
        avg_len = max(float(lengths.mean()) if n_docs else 0.0, 1e-9)
        norm = k1 * (1 - b + b * lengths[rows_a] / avg_len)
        weights = idf[cols_a] * tf * (k1 + 1) / (tf + norm)
        matrix = sparse.csr_matrix((weights, (rows_a, cols_a)), shape=(n_docs, len(vocab)), dtype=np.float32)
        return cls(matrix, vocab, lengths)

    def query_columns(self, query: str) -> npt.NDArray[np.int64]:
        """Vocabulary columns of the query's distinct known terms."""
        return np.asarray(sorted({self.vocab[t] for t in tokenize(query) if t in self.vocab}), dtype=np.int64)

    def score_all(self, query: str) -> npt.NDArray[np.float32]:
        """BM25 score of every document: (n_docs,)."""
        cols = self.query_columns(query)
        if cols.size == 0:
            return np.zeros(self.matrix.shape[0], dtype=np.float32)
        return np.asarray(self.matrix_csc[:, cols].sum(axis=1)).ravel().astype(np.float32)

    def score_rows(self, query: str, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """For candidate rows: (BM25 scores, fraction of query terms present), each (len(rows),)."""
        cols = self.query_columns(query)
        if cols.size == 0:
            zeros = np.zeros(len(rows), dtype=np.float32)
            return zeros, zeros.copy()
        sub = self.matrix[rows][:, cols]  # (n_rows, n_query_terms)
        scores = np.asarray(sub.sum(axis=1)).ravel().astype(np.float32)
        coverage = (sub.getnnz(axis=1) / cols.size).astype(np.float32)
        return scores, coverage

    def save(self, path: Path) -> None:
        terms = np.array(sorted(self.vocab, key=self.vocab.__getitem__), dtype=object)
        np.savez_compressed(
            path,
            data=self.matrix.data,
            indices=self.matrix.indices,
            indptr=self.matrix.indptr,
            shape=np.asarray(self.matrix.shape),
            terms=terms.astype(str),
            doc_lengths=self.doc_lengths,
        )

    @classmethod
    def load(cls, path: Path) -> BM25:
        with np.load(path, allow_pickle=False) as f:
            matrix = sparse.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=tuple(f["shape"]))
            vocab = {str(t): i for i, t in enumerate(f["terms"])}
            return cls(matrix, vocab, f["doc_lengths"])
