"""The training job: data -> encoder -> answer embeddings -> index -> reranker -> evaluation -> bundle.

Splits of the training questions (seeded):
  holdout  never trained on; evaluated like the eval set, to show the ordering of systems is not
           an artefact of tuning to the eval data;
  reranker with fine-tuning, kept from the encoder so the reranker learns from candidate lists as
           the tuned encoder produces them for unseen questions (its first part also picks the
           encoder's best epoch); without fine-tuning, every non-holdout question;
  encoder  the rest: what fine-tuning trains on.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any

import numpy as np

from common import manifest as mf
from ranking_service.features import AnswerTable
from ranking_service.lexical import BM25
from ranking_service.neighbours import build_neighbours
from retrieval_service import index as faiss_index
from retrieval_service.adapter import adapt
from retrieval_service.encoder import SentenceEncoder
from training import data as qa_data
from training.bundle import write_bundle
from training.config import TrainConfig
from training.evaluate import ambiguous_misses, bm25_rankings, evaluate_systems, near_duplicate_rate, title_overlap
from training.finetune import fine_tune, fine_tune_question_tower, train_query_adapter
from training.metrics import gold_ranks, retrieval_metrics
from training.report import markdown_report
from training.reranker import build_lists, rerank, train_reranker

logger = logging.getLogger(__name__)


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        logger.info("step %s ...", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 2)
        logger.info("step %s done in %.1f s", name, self.seconds[name])


def up_to_date(config: TrainConfig, data_fingerprint: str) -> str | None:
    """The served version if it was trained on the same data and config, else None."""
    try:
        manifest = mf.load_manifest(mf.resolve_bundle(config.out), verify_hashes=False)
    except mf.ArtifactError:
        return None
    if manifest.data_fingerprint == data_fingerprint and manifest.config_fingerprint == config.fingerprint():
        return manifest.artifact_version
    return None


def split_training(n: int, config: TrainConfig) -> dict[str, np.ndarray]:
    """Seeded index splits of the training questions (see the module docstring)."""
    order = np.random.default_rng(config.seed).permutation(n)
    n_hold = int(n * config.holdout_fraction)
    hold, rest = order[:n_hold], order[n_hold:]
    if config.epochs == 0:
        return {"holdout": hold, "reranker": rest, "encoder": rest[:0], "validation": rest[:0]}
    n_rerank = max(2, int(n * config.reranker_fraction))
    n_val = max(1, int(n * config.validation_fraction))
    return {"holdout": hold, "reranker": rest[:n_rerank], "encoder": rest[n_rerank:], "validation": rest[:n_val]}


def run(config: TrainConfig) -> Any:
    """Run the whole job and publish a new bundle under `config.out`; returns the bundle path."""
    timer = Timer()
    data_fp = qa_data.fingerprint(config.train + config.eval)
    if not config.force and (served := up_to_date(config, data_fp)):
        logger.info("artifacts %s are up to date for this data and config: nothing to train (use --force)", served)
        return mf.resolve_bundle(config.out)

    with timer.step("load_data"):
        corpus = qa_data.build_corpus(qa_data.load_pairs(config.train), qa_data.load_pairs(config.eval) if config.eval else [])
    logger.info("corpus: %d answers, %d train and %d eval questions", len(corpus.answers), len(corpus.train), len(corpus.eval))
    row_of = {a.id: i for i, a in enumerate(corpus.answers)}
    texts = [a.text for a in corpus.answers]
    titles = np.asarray([p.question for p in corpus.train], dtype=object)
    gold_train = np.asarray([row_of[p.answer.id] for p in corpus.train], dtype=np.int64)
    splits = split_training(len(corpus.train), config)
    known = np.setdiff1d(np.arange(len(corpus.train)), splits["holdout"])  # every question training may use
    logger.info("training splits: %s", {k: len(v) for k, v in splits.items()})

    with timer.step("load_encoder"):
        encoder = SentenceEncoder.pretrained(max_length=config.max_length)
    with timer.step("embed_answers"):
        base_answers = encoder.encode(texts, batch_size=config.embed_batch_size, progress=True)
    with timer.step("embed_questions"):
        eval_titles = [p.question for p in corpus.eval]
        base_q = {
            "train": encoder.encode(list(titles), batch_size=128, progress=True),
            "eval": encoder.encode(eval_titles, batch_size=128),
        }

    history: list[dict[str, float]] = []
    answer_vectors, tuned_q, query_adapter = base_answers, base_q, None
    if config.epochs > 0 and config.finetune_mode == "adapter":
        with timer.step("fine_tune"):
            query_adapter, history = _fit_adapter(config, splits, gold_train, base_answers, base_q["train"], titles)
        tuned_q = {name: adapt(vectors, query_adapter) for name, vectors in base_q.items()}
    elif config.epochs > 0:
        with timer.step("fine_tune"):
            history = _fine_tune(encoder, config, corpus, splits, gold_train, base_answers)
        if config.finetune_mode == "both":
            with timer.step("embed_answers"):
                answer_vectors = encoder.encode(texts, batch_size=config.embed_batch_size, progress=True)
        with timer.step("embed_questions"):
            tuned_q = {"train": encoder.encode(list(titles), batch_size=128), "eval": encoder.encode(eval_titles, batch_size=128)}

    with timer.step("build_index"):
        index = faiss_index.build_index(answer_vectors, config.index_factory)
        base_index = index if answer_vectors is base_answers else faiss_index.build_index(base_answers, config.index_factory)
        bm25 = BM25.fit(texts)
        # Reference questions for the neighbour features: every training question but the holdout.
        neighbours = build_neighbours(answer_vectors, tuned_q["train"][known], gold_train[known], k=config.hubness_k)
    votes = np.asarray([np.nan if a.score is None else a.score for a in corpus.answers], dtype=np.float32)
    table = AnswerTable(embeddings=answer_vectors, bm25=bm25, votes=votes, neighbours=neighbours)
    reference_row = np.full(len(corpus.train), -1, dtype=np.int64)
    reference_row[known] = np.arange(len(known))

    with timer.step("mine_candidates"):
        rr = splits["reranker"]
        _, cand_rows = faiss_index.search(index, tuned_q["train"][rr], config.candidates)
        lists = build_lists(list(titles[rr]), tuned_q["train"][rr], cand_rows, table, exclude_questions=reference_row[rr])
    with timer.step("train_reranker"):
        model, reranker_history = train_reranker(
            lists, gold_train[rr], table, epochs=config.reranker_epochs, batch_size=config.reranker_batch_size,
            validation_fraction=config.validation_fraction, seed=config.seed,
        )

    metrics: dict[str, Any] = {"splits": {k: int(len(v)) for k, v in splits.items()}}
    ambiguity: dict[str, float] | None = None  # set by the eval set's pass below
    with timer.step("evaluate"):
        known_titles = list(titles[known])
        sets = {"eval": (eval_titles, np.asarray([row_of[p.answer.id] for p in corpus.eval], dtype=np.int64), "eval")}
        if len(splits["holdout"]):
            h = splits["holdout"]
            sets["train_holdout"] = (list(titles[h]), gold_train[h], h)
        for name, (queries, gold, sel) in sets.items():
            if not len(queries):
                continue
            qb = base_q["eval"] if name == "eval" else base_q["train"][sel]
            qt = tuned_q["eval"] if name == "eval" else tuned_q["train"][sel]
            rankings = {"bm25": bm25_rankings(bm25, queries, 100)}
            rankings["retrieval (off-the-shelf)"] = faiss_index.search(base_index, qb, 100)[1]
            if config.epochs > 0:
                rankings["retrieval (fine-tuned)"] = faiss_index.search(index, qt, 100)[1]
            dense_rows = faiss_index.search(index, qt, max(100, config.candidates))[1]
            top = rerank(model, build_lists(queries, qt, dense_rows[:, : config.candidates], table), table)
            rankings["retrieval + rerank"] = np.concatenate([top, dense_rows[:, config.candidates :]], axis=1)[:, :100]
            result = evaluate_systems(rankings, gold, title_overlap(queries, known_titles))
            metrics[name] = {"pool_size": len(texts), "reranked_candidates": config.candidates, **result}
            if name == "eval":
                all_q = np.concatenate([base_q["train"], base_q["eval"]])
                all_gold = np.concatenate([gold_train, gold])
                ambiguity = ambiguous_misses(rankings["retrieval + rerank"][:, 0], gold, qb, all_q, all_gold,
                                             len(titles) + np.arange(len(gold)))
        if corpus.eval:
            others = np.concatenate([base_q["train"][known], base_q["eval"]])
            other_gold = np.concatenate([gold_train[known], sets["eval"][1]])
            metrics["ceiling"] = {
                "near_duplicate_threshold": 0.9,
                "eval_queries_with_near_duplicate": near_duplicate_rate(base_q["eval"], others, sets["eval"][1], other_gold),
            }
            if ambiguity is not None:
                metrics["ceiling"]["reranked_top1"] = ambiguity
    metrics["timings_s"] = timer.seconds
    metrics["fine_tune_history"] = history
    metrics["reranker_val_loss"] = reranker_history.get("val_loss", [])
    metrics["data"] = corpus.stats

    bundle = write_bundle(config, data_fp, encoder, corpus.answers, table, index, model, metrics, query_adapter)
    if "eval" in metrics:
        logger.info("evaluation:\n%s", markdown_report(metrics))
    return bundle


def _bank(gold_rows: np.ndarray, keys: list[str]):
    """The answer bank of the encoder split: (bank rows, each question's bank position, its mask fn)."""
    bank_rows = np.unique(gold_rows)
    position = {row: i for i, row in enumerate(bank_rows)}
    rows_of_key: dict[str, list[int]] = {}
    for key, row in zip(keys, gold_rows):
        rows_of_key.setdefault(key, []).append(position[row])

    def excluded(batch: np.ndarray) -> np.ndarray:  # answers of near-identical questions are not negatives
        mask = np.zeros((len(batch), len(bank_rows)), dtype=bool)
        for j, i in enumerate(batch):
            mask[j, rows_of_key[keys[i]]] = True
        return mask

    return bank_rows, np.asarray([position[r] for r in gold_rows]), excluded


def _fit_adapter(config, splits, gold_train, base_answers, train_vectors, titles):
    """Learn the query adapter on the encoder split; choose its epoch on the validation split."""
    fit, val = splits["encoder"], splits["validation"]
    bank_rows, positives, excluded = _bank(gold_train[fit], [qa_data.normalise(t) for t in titles[fit]])

    def validate(matrix: np.ndarray) -> float:  # MRR@10 of held-back training questions, whole corpus
        top = np.argsort(-(adapt(train_vectors[val], matrix) @ base_answers.T), axis=1)[:, :10]
        return retrieval_metrics(gold_ranks(top, gold_train[val]), cutoffs=(10,))["mrr@10"]

    return train_query_adapter(
        train_vectors[fit], positives, base_answers[bank_rows], excluded, validate, epochs=config.epochs,
        l2=config.adapter_l2, seed=config.seed, patience=config.adapter_patience,
    )


def _fine_tune(encoder, config, corpus, splits, gold_train, base_answers) -> list[dict[str, float]]:
    """Fine-tune `encoder` in place on the encoder split; the best epoch is chosen on the validation split."""
    fit, val = splits["encoder"], splits["validation"]
    questions = [corpus.train[i].question for i in fit]
    val_titles = [corpus.train[i].question for i in val]

    def validate() -> float:  # MRR@10 of held-back training questions against the whole corpus
        q = encoder.encode(val_titles, batch_size=128)
        answers = base_answers if config.finetune_mode == "question" else encoder.encode(
            [corpus.answers[r].text for r in np.unique(gold_train)], batch_size=config.embed_batch_size)
        rows = np.unique(gold_train) if config.finetune_mode == "both" else np.arange(len(base_answers))
        top = rows[np.argsort(-(q @ answers.T), axis=1)[:, :10]]
        return retrieval_metrics(gold_ranks(top, gold_train[val]), cutoffs=(10,))["mrr@10"]

    if config.finetune_mode == "both":
        return fine_tune(
            encoder, questions, [corpus.train[i].answer.text for i in fit], [corpus.train[i].answer.id for i in fit],
            epochs=config.epochs, batch_size=config.finetune_batch_size, learning_rate=config.finetune_learning_rate,
            max_answer_length=config.max_length, seed=config.seed, validate=validate,
        )
    # Question tower: the bank is every training answer the encoder split may see.
    bank_rows, positives, excluded = _bank(gold_train[fit], [qa_data.normalise(q) for q in questions])
    return fine_tune_question_tower(
        encoder, questions, positives, base_answers[bank_rows], excluded,
        epochs=config.epochs, batch_size=config.finetune_batch_size, learning_rate=config.finetune_learning_rate,
        seed=config.seed, validate=validate, patience=config.finetune_patience,
    )
