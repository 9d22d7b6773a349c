"""Reranker feature experiments on the shared ELI5 data: what the README's "what did not help" quotes.

Trains the shipped reranker, and variants with extra per-candidate features, on the same candidate
lists as `python -m training` (defaults: no fine-tuning, seed 0), and prints recall@1 / recall@10 /
MRR@10 on the eval questions and on the held-out training questions. Embeddings are cached in
--cache (the first run embeds the answers three ways: about 6 minutes on 2 cores).

    .venv/bin/python scripts/reranker_experiments.py [--cache /tmp/reranker-experiments]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ranking_service.features import AnswerTable  # noqa: E402
from ranking_service.lexical import BM25  # noqa: E402
from ranking_service.neighbours import build_neighbours  # noqa: E402
from retrieval_service import index as faiss_index  # noqa: E402
from retrieval_service.encoder import SentenceEncoder  # noqa: E402
from training import data as qa_data  # noqa: E402
from training.config import DEFAULT_DATA_DIR, TrainConfig  # noqa: E402
from training.metrics import gold_ranks, retrieval_metrics  # noqa: E402
from training.reranker import CandidateLists, build_lists, reranker_scores, sort_by_score, train_reranker  # noqa: E402
from training.train import split_training  # noqa: E402


def chunks(text: str, words: int = 60, cap: int = 8) -> list[str]:
    """Sentence-aligned pieces of about `words` words, at most `cap` of them."""
    out, current = [], []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if current and len(current) + len(sentence.split()) > words:
            out.append(" ".join(current))
            current = []
        current.extend(sentence.split())
        while len(current) > 2 * words:
            out.append(" ".join(current[:words]))
            current = current[words:]
    return (out + [" ".join(current)] if current else out)[:cap]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/reranker-experiments"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(train=[str(DEFAULT_DATA_DIR / "train.jsonl")], eval=[str(DEFAULT_DATA_DIR / "dev.jsonl")])
    corpus = qa_data.build_corpus(qa_data.load_pairs(config.train), qa_data.load_pairs(config.eval))
    row_of = {a.id: i for i, a in enumerate(corpus.answers)}
    texts = [a.text for a in corpus.answers]
    titles = [p.question for p in corpus.train]
    eval_titles = [p.question for p in corpus.eval]
    gold_train = np.asarray([row_of[p.answer.id] for p in corpus.train])
    gold_eval = np.asarray([row_of[p.answer.id] for p in corpus.eval])
    splits = split_training(len(corpus.train), config)
    known = np.setdiff1d(np.arange(len(corpus.train)), splits["holdout"])

    encoders: dict[int, SentenceEncoder] = {}

    def cached(name, max_length, items):
        path = args.cache / f"{name}.npy"
        if not path.exists():
            encoder = encoders.setdefault(max_length, SentenceEncoder.pretrained(max_length=max_length))
            np.save(path, encoder.encode(items, batch_size=32, progress=True))
        return np.load(path)

    answers = cached("answers_256", config.max_length, texts)
    questions, queries = cached("train_titles", config.max_length, titles), cached("eval_titles", config.max_length, eval_titles)
    answers_128 = cached("answers_128", 128, texts)  # all-MiniLM-L6-v2 was trained on 128 tokens
    pieces = [chunks(t) for t in texts]
    piece_vectors = cached("answer_chunks", 128, [c for cs in pieces for c in cs])
    chunk_table = np.zeros((len(texts), 8, answers.shape[1]), np.float32)  # (n, 8, dim)
    chunk_mask = np.zeros((len(texts), 8), bool)
    owners = np.concatenate([[i] * len(cs) for i, cs in enumerate(pieces)])
    slots = np.concatenate([np.arange(len(cs)) for cs in pieces])
    chunk_table[owners, slots], chunk_mask[owners, slots] = piece_vectors, True

    index = faiss_index.build_index(answers, config.index_factory)
    votes = np.asarray([np.nan if a.score is None else a.score for a in corpus.answers], dtype=np.float32)
    neighbours = build_neighbours(answers, questions[known], gold_train[known], k=config.hubness_k)
    table = AnswerTable(embeddings=answers, bm25=BM25.fit(texts), votes=votes, neighbours=neighbours)
    reference_row = np.full(len(titles), -1)
    reference_row[known] = np.arange(len(known))
    ref_questions, ref_gold = questions[known], gold_train[known]

    def first_128(q, rows, exclude):
        return np.einsum("nd,ncd->nc", q, answers_128[rows])[..., None]

    def chunk_scores(q, rows, exclude):
        sims = np.einsum("nd,ncjd->ncj", q, chunk_table[rows])  # (n, c, 8)
        mask = chunk_mask[rows]
        best = np.where(mask, sims, -1).max(-1)
        return np.stack([best, (sims * mask).sum(-1) / mask.sum(-1), sims[..., 0], np.log(mask.sum(-1))], -1)

    def answer_hop(mode):
        """Candidate vs the answers of the query's 5 nearest training questions (see the README)."""

        def features(q, rows, exclude):
            sims = q @ ref_questions.T  # (n, n_ref)
            for i, e in enumerate(exclude if exclude is not None else []):
                if e >= 0:
                    sims[i, e] = -2  # a training query is not its own neighbour
            if mode == "blind":  # neighbours whose answer is a candidate are dropped for all candidates
                for i in range(len(q)):
                    sims[i, np.isin(ref_gold, rows[i])] = -2
            top = np.argsort(-sims, axis=1)[:, :5]  # (n, 5)
            q_sims, hop_answers = np.take_along_axis(sims, top, 1), ref_gold[top]  # (n, 5) each
            a_sims = np.einsum("ncd,nkd->nck", answers[rows], answers[hop_answers])  # (n, c, 5)
            if mode == "masked":
                a_sims = np.where(rows[:, :, None] == hop_answers[:, None, :], 0.0, a_sims)
            w = q_sims[:, None, :] * a_sims
            first = np.repeat(q_sims[:, :1], rows.shape[1], 1)
            return np.stack([w.max(-1), w.mean(-1), a_sims[..., 0] * q_sims[:, None, 0], first], -1)

        return features

    def lists(query_texts, vectors, exclude, extra):
        _, rows = faiss_index.search(index, vectors, config.candidates)
        base = build_lists(query_texts, vectors, rows, table, exclude_questions=exclude)
        if extra is None:
            return base
        features = np.concatenate([base.features, extra(vectors, rows, exclude)], axis=-1).astype(np.float32)
        return CandidateLists(features, rows, base.question_embeddings)

    def run(name, extra=None, seeds=(0,), exclude_query=True):
        start = time.perf_counter()
        rr, hold = splits["reranker"], splits["holdout"]
        train_lists = lists([titles[i] for i in rr], questions[rr], reference_row[rr] if exclude_query else None, extra)
        tests = {"eval": (lists(eval_titles, queries, None, extra), gold_eval),
                 "held-out": (lists([titles[i] for i in hold], questions[hold], None, extra), gold_train[hold])}
        models = [train_reranker(train_lists, gold_train[rr], table, seed=s, verbose=0)[0] for s in seeds]
        line = []
        for test, (test_lists, gold) in tests.items():
            scores = sum(reranker_scores(model, test_lists, table) for model in models)  # (n, c): seeds averaged
            ranked = sort_by_score(test_lists.rows, scores)
            m = retrieval_metrics(gold_ranks(ranked, gold), cutoffs=(1, 10))
            line.append(f"{test} r@1 {m['recall@1']:.4f} r@10 {m['recall@10']:.4f} mrr@10 {m['mrr@10']:.4f}")
        print(f"{name:52s} {' | '.join(line)}  ({time.perf_counter() - start:.0f} s)", flush=True)

    run("shipped features")
    run("shipped features, training query not left out", exclude_query=False)
    run("shipped features, 3 seeds averaged", seeds=(0, 1, 2))
    run("+ cosine to the answer's first 128 tokens", first_128)
    run("+ chunk cosines (max, mean, first, log count)", chunk_scores)
    run("+ answer hop, own answer masked (reveals membership)", answer_hop("masked"))
    run("+ answer hop, own answer at cosine 1 (reveals it too)", answer_hop("own"))
    run("+ answer hop, blind to membership", answer_hop("blind"))


if __name__ == "__main__":
    main()
