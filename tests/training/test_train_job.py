"""The training job: what it publishes, when it skips, and how it reports bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from common import manifest as mf
from training.config import TrainConfig
from training.train import up_to_date

pytestmark = pytest.mark.slow


def test_bundle_has_every_artifact_and_a_valid_manifest(tiny_bundle):
    manifest = mf.load_manifest(tiny_bundle, (mf.ENCODER_DIR, mf.INDEX_FILE, mf.ANSWERS_FILE, mf.EMBEDDINGS_FILE,
                                              mf.LEXICAL_FILE, mf.RERANKER_FILE, mf.METRICS_FILE))
    assert manifest.embedding_dim == 384 and manifest.num_answers == 40
    assert manifest.metric == "inner_product" and manifest.normalization == "l2"
    assert manifest.library_versions["faiss-cpu"] != "not installed"
    assert set(manifest.metrics["eval"]["systems"]) == {"bm25", "retrieval (off-the-shelf)", "retrieval + rerank"}


def test_metrics_and_report_cover_all_cutoffs(tiny_bundle):
    metrics = json.loads((tiny_bundle / mf.METRICS_FILE).read_text())["eval"]
    assert metrics["pool_size"] == 40 and metrics["num_queries"] == 8
    for system in metrics["systems"].values():
        for k in (1, 3, 5, 10, 20, 100):
            assert 0 <= system[f"precision@{k}"] <= system[f"recall@{k}"] <= 1
        assert {"mrr@10", "ndcg@10"} <= set(system)
    report = (tiny_bundle / mf.REPORT_FILE).read_text()
    assert "retrieval + rerank" in report and "pool of 40 answers" in report and "held out" in report
    assert (tiny_bundle / mf.PLOT_FILE).read_bytes()[:4] == b"\x89PNG"


def test_unchanged_data_and_config_are_not_retrained(tiny_artifacts, tiny_bundle):
    from training import data

    manifest = mf.load_manifest(tiny_bundle)
    config = TrainConfig(train=["x"], out=tiny_artifacts, candidates=20, reranker_epochs=3,
                         reranker_batch_size=8, validation_fraction=0.2)
    assert config.fingerprint() == manifest.config_fingerprint
    assert up_to_date(config, manifest.data_fingerprint) == manifest.artifact_version
    assert up_to_date(config, "other data") is None
    assert up_to_date(config.model_copy(update={"epochs": 1}), manifest.data_fingerprint) is None
    assert data.fingerprint([]) != manifest.data_fingerprint


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--train", "/nonexistent/train.jsonl"], "not found"),
        (["--train", "tests/fixtures/tiny_train.jsonl", "--eval", "tests/fixtures/minilm_reference.json"], "column"),
    ],
)
def test_cli_reports_bad_data_in_one_line(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last, result.stderr
    assert "Traceback" not in result.stderr
