"""The artifact bundle contract: file names, manifest.json, and the CURRENT pointer.

A training run writes one directory per artifact version::

    artifacts/
      CURRENT                  <- one line: the served version (swapped atomically)
      20261203-183000-ab12cd/  <- one bundle
        manifest.json
        encoder/ ...           <- Keras encoder (keras-hub preset) + tokenizer.json
        answers.jsonl          <- answer store: id, text, score
        answer_embeddings.npy  <- (n_answers, dim) float32, L2-normalised
        index.faiss
        lexical.npz            <- BM25 matrix + vocabulary for the reranker features
        answer_stats.npz       <- per-answer reranker inputs computed offline: nearest training questions
        reranker.keras
        metrics.json  report.md  recall_at_k.png

Services call `load_manifest()`, which refuses a missing, truncated or mismatched bundle with a
message that says what to run.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

SCHEMA_VERSION = 2  # 2: answer_stats.npz holds question neighbours (was: hubness only)
MANIFEST_FILE = "manifest.json"
CURRENT_POINTER = "CURRENT"

ENCODER_DIR = "encoder"
ANSWERS_FILE = "answers.jsonl"
EMBEDDINGS_FILE = "answer_embeddings.npy"
INDEX_FILE = "index.faiss"
LEXICAL_FILE = "lexical.npz"
ANSWER_STATS_FILE = "answer_stats.npz"
RERANKER_FILE = "reranker.keras"
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
PLOT_FILE = "recall_at_k.png"

HOW_TO_FIX = "Train a bundle first: `make train` (or `python -m training --out <artifacts dir>`)."


class ArtifactError(RuntimeError):
    """The artifact bundle is missing, incomplete, corrupt or incompatible."""


class EncoderInfo(BaseModel):
    name: str
    max_length: int
    pooling: Literal["mean"] = "mean"
    fine_tuned_epochs: int = 0
    fine_tune_mode: str | None = None  # "adapter", "question" or "both" when fine_tuned_epochs > 0


class Manifest(BaseModel):
    schema_version: int
    artifact_version: str
    created_at: datetime
    embedding_dim: int
    metric: Literal["inner_product"]
    normalization: Literal["l2"]
    index_factory: str
    num_answers: int
    encoder: EncoderInfo
    reranker_features: list[str]
    library_versions: dict[str, str]
    data_fingerprint: str
    config_fingerprint: str
    metrics: dict[str, Any] = {}
    files: dict[str, str]  # path relative to the bundle -> sha256


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_bundle_files(bundle: Path) -> dict[str, str]:
    """sha256 of every file in the bundle except the manifest itself."""
    return {
        str(path.relative_to(bundle)): file_sha256(path)
        for path in sorted(bundle.rglob("*"))
        if path.is_file() and path.name != MANIFEST_FILE
    }


def resolve_bundle(artifacts: Path) -> Path:
    """Return the bundle directory: `artifacts` itself if it holds a manifest, else CURRENT's target."""
    artifacts = Path(artifacts)
    if (artifacts / MANIFEST_FILE).is_file():
        return artifacts
    pointer = artifacts / CURRENT_POINTER
    if not pointer.is_file():
        raise ArtifactError(f"no artifact bundle at {artifacts} (no {MANIFEST_FILE}, no {CURRENT_POINTER}). {HOW_TO_FIX}")
    version = pointer.read_text().strip()
    bundle = artifacts / version
    if not version or not (bundle / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{pointer} names {version!r}, which has no {MANIFEST_FILE}. {HOW_TO_FIX}")
    return bundle


def load_manifest(bundle: Path, required: tuple[str, ...] = (), verify_hashes: bool = True) -> Manifest:
    """Read and validate a bundle's manifest; check that `required` files exist and are intact.

    Raises:
        ArtifactError: with a one-line reason and what to run.
    """
    path = Path(bundle) / MANIFEST_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing. {HOW_TO_FIX}") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}). {HOW_TO_FIX}") from None
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ArtifactError(
            f"{path} has schema_version {raw.get('schema_version')!r}; this code reads {SCHEMA_VERSION}. "
            f"Retrain with this version of the code. {HOW_TO_FIX}"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ArtifactError(f"{path} is invalid at {'.'.join(map(str, first['loc']))}: {first['msg']}. {HOW_TO_FIX}") from None
    for name in required:
        listed = [p for p in manifest.files if p == name or p.startswith(name.rstrip("/") + "/")]
        if not listed:
            raise ArtifactError(f"{path} lists no {name!r}. {HOW_TO_FIX}")
        for rel in listed:
            file = Path(bundle) / rel
            if not file.is_file():
                raise ArtifactError(f"{file} is missing from the bundle. {HOW_TO_FIX}")
            if verify_hashes and file_sha256(file) != manifest.files[rel]:
                raise ArtifactError(f"{file} does not match its manifest checksum (truncated or modified). {HOW_TO_FIX}")
    return manifest


def write_manifest(bundle: Path, manifest: Manifest) -> None:
    (Path(bundle) / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")


def publish(artifacts: Path, version: str) -> None:
    """Point CURRENT at `version` atomically (write a temp file, then rename over)."""
    tmp = Path(artifacts) / f".{CURRENT_POINTER}.{os.getpid()}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, Path(artifacts) / CURRENT_POINTER)
