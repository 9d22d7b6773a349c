"""BM25 against a hand-computed score, and its save -> load round trip."""

import math

import numpy as np
import pytest

from ranking_service.lexical import BM25, tokenize

DOCS = ["the cat sat on the mat", "dogs chase cats", "a cat and a dog play outside", "birds fly south"]


def test_tokenize_lowercases_and_drops_stopwords():
    assert tokenize("Why is THE Sky blue? It's light!") == ["sky", "blue", "it's", "light"]


def test_score_matches_hand_computation():
    bm25 = BM25.fit(DOCS, k1=1.2, b=0.75)
    lengths = [3, 3, 4, 3]  # after stop words: [cat sat mat] [dogs chase cats] [cat dog play outside] [birds fly south]
    avg = sum(lengths) / 4
    idf = math.log1p((4 - 2 + 0.5) / (2 + 0.5))  # "cat" is in docs 0 and 2
    expected = idf * 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * lengths[0] / avg))
    scores = bm25.score_all("cat")
    assert scores[0] == pytest.approx(expected, rel=1e-5)
    assert scores[1] == 0 and scores[3] == 0  # "cats" is another token


def test_score_rows_agrees_with_score_all_and_reports_coverage():
    bm25 = BM25.fit(DOCS)
    rows = np.array([2, 0, 3])
    scores, coverage = bm25.score_rows("cat dog unicorn", rows)
    assert np.allclose(scores, bm25.score_all("cat dog unicorn")[rows])
    # "unicorn" is not in the vocabulary; doc 2 has both known terms, doc 0 one, doc 3 none.
    assert coverage.tolist() == [1.0, 0.5, 0.0]


def test_unknown_query_scores_zero():
    bm25 = BM25.fit(DOCS)
    assert not bm25.score_all("zebra").any()
    scores, coverage = bm25.score_rows("the", np.array([0, 1]))
    assert not scores.any() and not coverage.any()


def test_round_trip(tmp_path):
    bm25 = BM25.fit(DOCS)
    bm25.save(tmp_path / "lexical.npz")
    loaded = BM25.load(tmp_path / "lexical.npz")
    assert loaded.vocab == bm25.vocab
    assert np.allclose(loaded.score_all("cat dog birds"), bm25.score_all("cat dog birds"))
    assert np.allclose(loaded.doc_lengths, bm25.doc_lengths)


def test_rejects_bad_parameters():
    with pytest.raises(ValueError, match="k1"):
        BM25.fit(DOCS, b=2.0)
