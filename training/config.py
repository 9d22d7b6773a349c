"""Training job configuration: every knob of one run, recorded in the manifest via its fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from retrieval_service.index import DEFAULT_FACTORY

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eli5"


class TrainConfig(BaseModel):
    """Args of `python -m training` (see `--help`)."""

    train: list[str] = Field(min_length=1)
    eval: list[str] = []
    out: Path = Path("artifacts")
    epochs: int = Field(0, ge=0, description="Encoder fine-tuning epochs (0 = off-the-shelf MiniLM).")
    finetune_mode: Literal["adapter", "question", "both"] = Field(
        "adapter",
        description="'adapter': learn a linear map on question vectors (seconds); 'question': tune the question "
        "encoder against the frozen answer vectors, every training answer a negative (minutes); 'both': tune both "
        "sides with in-batch negatives (slow on a CPU).",
    )
    adapter_l2: float = Field(0.1, ge=0, description="Pull of the query adapter towards the identity.")
    adapter_patience: int = Field(8, ge=1, description="Adapter epochs (seconds each) without validation gain.")
    finetune_batch_size: int = Field(64, ge=2)
    finetune_learning_rate: float = Field(2e-5, gt=0)
    finetune_patience: int = Field(2, ge=1, description="Stop after this many epochs without validation gain.")
    max_length: int = Field(256, ge=8, le=512)
    embed_batch_size: int = Field(32, ge=1)
    index_factory: str = DEFAULT_FACTORY
    candidates: int = Field(100, ge=2, le=1000, description="Retrieved candidates per question the reranker sees.")
    reranker_epochs: int = Field(30, ge=1)
    reranker_batch_size: int = Field(32, ge=1)
    validation_fraction: float = Field(0.1, gt=0, lt=0.5, description="Training questions for model selection.")
    holdout_fraction: float = Field(
        0.1, ge=0, lt=0.5, description="Training questions held out from all training, evaluated like the eval set."
    )
    reranker_fraction: float = Field(
        0.3, gt=0, lt=0.9, description="With fine-tuning: training questions kept from the encoder for the reranker."
    )
    hubness_k: int = Field(10, ge=1)
    seed: int = 0
    force: bool = False

    def fingerprint(self) -> str:
        """Hash of what changes the artifacts (data paths and output dir excluded)."""
        relevant = self.model_dump(exclude={"train", "eval", "out", "force"}, mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
