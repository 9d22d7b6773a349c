"""Reranker feature experiments on the shared ELI5 data: what the README's "what did not help" quotes.

Trains the shipped reranker, and variants with extra per-candidate features, on the same candidate
lists as `python -m training` (defaults: no fine-tuning, seed 0), and prints recall@1 / recall@10 /
MRR@10 on the eval questions and on the held-out training questions. Embeddings are cached in
--cache (the first run embeds the answers three ways and keeps every token's vector: about 9
minutes on 2 cores, and 0.6 GB on disk).

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
import tensorflow as tf  # noqa: E402

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


def token_vectors(encoder: SentenceEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM's L2-normalised last-layer token vectors of every text, ragged: (tokens, dim) float16
    and (n + 1,) offsets. The mean of these (before normalising) is the sentence vector."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)] * 2, reduce_retracing=True)
    def sequence(ids, mask):
        out = encoder.backbone({"token_ids": ids, "segment_ids": tf.zeros_like(ids), "padding_mask": mask})
        return tf.math.l2_normalize(out["sequence_output"], -1)  # (batch, seq, dim)

    token_lists = encoder.tokenize(texts)
    lengths = np.asarray([len(t) for t in token_lists])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    out = np.zeros((offsets[-1], encoder.dim), np.float16)
    for rows in encoder.length_batches(token_lists, 32):
        ids, mask = encoder.pad([token_lists[i] for i in rows])
        vectors = sequence(tf.constant(ids), tf.constant(mask)).numpy()
        for j, r in enumerate(rows):
            out[offsets[r] : offsets[r + 1]] = vectors[j, : lengths[r]]
    return out, offsets


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

    def cached_tokens(name, items):
        if not (args.cache / f"{name}_tokens.npy").exists():
            encoder = encoders.setdefault(config.max_length, SentenceEncoder.pretrained(max_length=config.max_length))
            vectors, offsets = token_vectors(encoder, items)
            np.save(args.cache / f"{name}_tokens.npy", vectors)
            np.save(args.cache / f"{name}_offsets.npy", offsets)
        return np.load(args.cache / f"{name}_tokens.npy"), np.load(args.cache / f"{name}_offsets.npy")

    answer_tokens = cached_tokens("answers", texts)
    query_tokens = {"train": cached_tokens("train_titles", titles), "eval": cached_tokens("eval_titles", eval_titles)}

    index = faiss_index.build_index(answers, config.index_factory)
    votes = np.asarray([np.nan if a.score is None else a.score for a in corpus.answers], dtype=np.float32)
    neighbours = build_neighbours(answers, questions[known], gold_train[known], k=config.hubness_k)
    table = AnswerTable(embeddings=answers, bm25=BM25.fit(texts), votes=votes, neighbours=neighbours)
    reference_row = np.full(len(titles), -1)
    reference_row[known] = np.arange(len(known))
    ref_questions, ref_gold = questions[known], gold_train[known]

    def first_128(q, rows, exclude, who):
        return np.einsum("nd,ncd->nc", q, answers_128[rows])[..., None]

    def chunk_scores(q, rows, exclude, who):
        sims = np.einsum("nd,ncjd->ncj", q, chunk_table[rows])  # (n, c, 8)
        mask = chunk_mask[rows]
        best = np.where(mask, sims, -1).max(-1)
        return np.stack([best, (sims * mask).sum(-1) / mask.sum(-1), sims[..., 0], np.log(mask.sum(-1))], -1)

    def answer_hop(mode):
        """Candidate vs the answers of the query's 5 nearest training questions (see the README)."""

        def features(q, rows, exclude, who):
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

    def list_context(q, rows, exclude, who):
        """Pseudo-relevance feedback: each candidate vs the other candidates of its list."""
        vectors = answers[rows]  # (n, c, dim), in dense order
        sims = np.einsum("ncd,nkd->nck", vectors, vectors)  # (n, c, c)
        others = ~np.eye(rows.shape[1], dtype=bool)[None]
        dense = np.einsum("nd,ncd->nc", q, vectors)
        weights = np.exp(20 * (dense - dense[:, :1]))[:, None, :] * others  # softmax-like, self excluded
        feedback = (sims * weights).sum(-1) / weights.sum(-1)
        top10 = (sims[:, :, :10] * others[:, :, :10]).sum(-1) / others[:, :, :10].sum(-1)
        above = np.where(np.tril(others[0])[None], sims, -1.0).max(-1)  # closest better-ranked candidate
        above[:, 0] = 0
        return np.stack([feedback, top10, above], -1)

    title_bm25 = BM25.fit([titles[i] for i in known])

    def lexical_hop(q, rows, exclude, who):
        """BM25 of the query against the titles of each candidate's nearest training questions."""
        out = np.zeros(rows.shape + (2,), np.float32)
        for i, text in enumerate(who["texts"]):
            scores = title_bm25.score_all(text)  # (n_ref,)
            ids = neighbours.ids[rows[i]][:, : neighbours.k]  # (c, k)
            valid = (ids >= 0) & (ids != (exclude[i] if exclude is not None else -1))
            hop = np.where(valid, scores[np.maximum(ids, 0)], 0.0)
            out[i, :, 0], out[i, :, 1] = hop.max(1), hop.sum(1) / np.maximum(valid.sum(1), 1)
        return out

    def token_maxsim(q, rows, exclude, who):
        """Untrained late interaction (ColBERT's MaxSim) on MiniLM's token vectors, [CLS]/[SEP] dropped:
        each query token's best cosine to any answer token, then the mean, min and mean of all pairs."""
        q_vectors, q_offsets = query_tokens[who["source"]]
        a_vectors, a_offsets = answer_tokens
        out = np.zeros(rows.shape + (3,), np.float32)
        for i, j in enumerate(who["idx"]):
            qt = q_vectors[q_offsets[j] + 1 : q_offsets[j + 1] - 1].astype(np.float32)  # (m, dim)
            for c, r in enumerate(rows[i]):
                sims = qt @ a_vectors[a_offsets[r] + 1 : a_offsets[r + 1] - 1].astype(np.float32).T  # (m, t)
                if sims.size:
                    best = sims.max(1)
                    out[i, c] = best.mean(), best.min(), sims.mean()
        return out

    rr, hold = splits["reranker"], splits["holdout"]
    query_sets = {
        "train": {"texts": [titles[i] for i in rr], "vectors": questions[rr], "source": "train", "idx": rr, "gold": gold_train[rr]},
        "eval": {"texts": eval_titles, "vectors": queries, "source": "eval", "idx": np.arange(len(eval_titles)), "gold": gold_eval},
        "held-out": {"texts": [titles[i] for i in hold], "vectors": questions[hold], "source": "train", "idx": hold,
                     "gold": gold_train[hold]},
    }

    cache: dict = {}  # lists and extra features are computed once per query set (token MaxSim takes minutes)

    def lists(who, exclude, extra):
        if (id(who), exclude is None) not in cache:
            _, rows = faiss_index.search(index, who["vectors"], config.candidates)
            cache[id(who), exclude is None] = build_lists(who["texts"], who["vectors"], rows, table, exclude_questions=exclude)
        base = cache[id(who), exclude is None]
        rows = base.rows
        if extra is None:
            return base
        key = (extra, id(who), exclude is None)
        if key not in cache:
            cache[key] = extra(who["vectors"], rows, exclude, who)
        more = cache[key]
        return CandidateLists(np.concatenate([base.features, more], axis=-1).astype(np.float32), rows, base.question_embeddings)

    def run(name, extra=None, seeds=(0,), exclude_query=True, train_fraction=1.0, **model_options):
        start = time.perf_counter()
        train_lists = lists(query_sets["train"], reference_row[rr] if exclude_query else None, extra)
        train_gold = query_sets["train"]["gold"]
        if train_fraction < 1:  # a seeded subset of the training lists: the learning curve
            keep = np.random.default_rng(1).permutation(len(train_gold))[: int(len(train_gold) * train_fraction)]
            train_lists = CandidateLists(train_lists.features[keep], train_lists.rows[keep], train_lists.question_embeddings[keep])
            train_gold = train_gold[keep]
        models = [train_reranker(train_lists, train_gold, table, seed=s, verbose=0, **model_options)[0] for s in seeds]
        line = []
        for test in ("eval", "held-out"):
            test_lists = lists(query_sets[test], None, extra)
            scores = sum(reranker_scores(model, test_lists, table) for model in models)  # (n, c): seeds averaged
            ranked = sort_by_score(test_lists.rows, scores)
            m = retrieval_metrics(gold_ranks(ranked, query_sets[test]["gold"]), cutoffs=(1, 10))
            line.append(f"{test} r@1 {m['recall@1']:.4f} r@10 {m['recall@10']:.4f} mrr@10 {m['mrr@10']:.4f}")
        print(f"{name:52s} {' | '.join(line)}  ({time.perf_counter() - start:.0f} s)", flush=True)

    run("shipped features")
    run("shipped features, training query not left out", exclude_query=False)
    run("shipped features, 3 seeds averaged", seeds=(0, 1, 2))
    for fraction in (0.25, 0.5, 0.75, 1.0):  # does more training data help? (2 seeds each)
        run(f"shipped features, {fraction:.0%} of the training lists, 2 seeds", seeds=(0, 1), train_fraction=fraction)
    for projection, hidden in ((16, 32), (64, 64), (128, 64), (32, 128)):  # shipped: 32, 32
        run(f"reranker projection {projection}, hidden {hidden}", projection_dim=projection, hidden_units=hidden)
    run("+ cosine to the answer's first 128 tokens", first_128)
    run("+ chunk cosines (max, mean, first, log count)", chunk_scores)
    run("+ list context (feedback, top-10 mean, closest above)", list_context)
    run("+ lexical hop (BM25 vs neighbour question titles)", lexical_hop)
    run("+ token MaxSim (mean, min, all-pairs mean)", token_maxsim)
    run("+ token MaxSim, 3 seeds averaged", token_maxsim, seeds=(0, 1, 2))
    run("+ answer hop, own answer masked (reveals membership)", answer_hop("masked"))
    run("+ answer hop, own answer at cosine 1 (reveals it too)", answer_hop("own"))
    run("+ answer hop, blind to membership", answer_hop("blind"))

if __name__ == "__main__":
    main()
