"""On real ELI5 rows (../shared/data/eli5, when present): the full pipeline beats BM25."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import pytest

from common import manifest as mf

SHARED_ELI5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eli5"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.real_data,
    pytest.mark.skipif(not (SHARED_ELI5 / "train.jsonl").is_file(), reason=f"{SHARED_ELI5} not present"),
]


def test_retrieval_plus_reranking_beats_bm25_on_held_out_questions(tmp_path):
    from training.config import TrainConfig
    from training.train import run

    # 400 questions to train on and 150 held-out ones, all from the real training file.
    with (SHARED_ELI5 / "train.jsonl").open() as handle:
        rows = list(islice(handle, 550))
    (tmp_path / "train.jsonl").write_text("".join(rows[:400]))
    (tmp_path / "held_out.jsonl").write_text("".join(rows[400:]))
    bundle = run(
        TrainConfig(
            train=[str(tmp_path / "train.jsonl")],
            eval=[str(tmp_path / "held_out.jsonl")],
            out=tmp_path / "artifacts",
            candidates=50,
            reranker_epochs=10,
        )
    )
    metrics = json.loads((bundle / mf.METRICS_FILE).read_text())["eval"]
    systems = metrics["systems"]
    assert metrics["num_queries"] == 150 and metrics["pool_size"] == 550
    assert systems["retrieval + rerank"]["recall@10"] > systems["bm25"]["recall@10"], systems
    assert systems["retrieval (off-the-shelf)"]["recall@10"] > systems["bm25"]["recall@10"], systems
