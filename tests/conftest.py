"""Shared fixtures: paths, and one tiny trained artifact bundle built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
SHARED_ELI5 = REPO_ROOT.parent / "shared" / "data" / "eli5"


@pytest.fixture(scope="session")
def tiny_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An artifacts dir (bundle + CURRENT) trained on 32 hand-written Q/A pairs, 8 eval questions.

    Real components end to end: MiniLM encoder, FAISS index, BM25, Keras reranker.
    """
    from training.config import TrainConfig
    from training.train import run

    out = tmp_path_factory.mktemp("artifacts")
    run(
        TrainConfig(
            train=[str(FIXTURES / "tiny_train.jsonl")],
            eval=[str(FIXTURES / "tiny_eval.jsonl")],
            out=out,
            candidates=20,
            reranker_epochs=3,
            reranker_batch_size=8,
            validation_fraction=0.2,
        )
    )
    return out


@pytest.fixture(scope="session")
def tiny_bundle(tiny_artifacts: Path) -> Path:
    """The bundle directory the CURRENT pointer names."""
    from common.manifest import resolve_bundle

    return resolve_bundle(tiny_artifacts)
