"""Both model services refuse to start on a bad bundle, with one line that says what is wrong.

Cheap checks (pointer, manifest) fail in `create_app`; file checks (presence, checksums, shapes) fail
in the lifespan, so each case builds the app *and* enters the TestClient.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest
from fastapi.testclient import TestClient

from common import manifest as mf
from ranking_service.config import RankingSettings
from ranking_service.main import create_app as create_ranking_app
from retrieval_service.config import RetrievalSettings
from retrieval_service.main import create_app as create_retrieval_app

pytestmark = pytest.mark.slow

SERVICES = ["retrieval", "ranking"]


def start(service: str, artifacts_dir: Path) -> None:
    """Build the app and run its lifespan, as `uvicorn ... --factory` would."""
    if service == "retrieval":
        app = create_retrieval_app(RetrievalSettings(artifacts_dir=artifacts_dir))
    else:
        app = create_ranking_app(RankingSettings(artifacts_dir=artifacts_dir))
    with TestClient(app):
        pass


def assert_refuses(service: str, artifacts_dir: Path, reason: str) -> str:
    """Starting fails with SystemExit whose one-line message starts with the service and matches `reason`."""
    with pytest.raises(SystemExit, match=reason) as info:
        start(service, artifacts_dir)
    message = str(info.value)
    assert message.startswith(f"{service} service cannot start: "), message
    assert "\n" not in message, message
    return message


@pytest.fixture
def bundle(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny bundle to break. The 88 MB encoder, which no case here modifies, is a
    symlink to the original; everything else is copied."""
    copy = tmp_path / tiny_bundle.name
    shutil.copytree(tiny_bundle, copy, ignore=shutil.ignore_patterns(mf.ENCODER_DIR))
    (copy / mf.ENCODER_DIR).symlink_to(tiny_bundle / mf.ENCODER_DIR, target_is_directory=True)
    return copy


def edit_manifest(bundle: Path, change: Callable[[dict], None]) -> None:
    manifest = json.loads((bundle / mf.MANIFEST_FILE).read_text())
    change(manifest)
    (bundle / mf.MANIFEST_FILE).write_text(json.dumps(manifest))


def rehash(bundle: Path, name: str) -> None:
    """Record `name`'s current checksum, so only the consistency checks can catch what changed."""
    digest = mf.file_sha256(bundle / name)
    edit_manifest(bundle, lambda manifest: manifest["files"].__setitem__(name, digest))


# --- the tiny bundle itself --------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_intact_copy_starts(service: str, bundle: Path) -> None:
    """The breakage below is what fails, not the copying."""
    start(service, bundle)


# --- caught in create_app ----------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_missing_artifacts_dir_says_to_train(service: str, tmp_path: Path) -> None:
    assert_refuses(service, tmp_path / "no-such-dir", r"no artifact bundle at .*make train")


@pytest.mark.parametrize("service", SERVICES)
def test_current_naming_a_missing_version(service: str, tmp_path: Path) -> None:
    (tmp_path / mf.CURRENT_POINTER).write_text("20000101-000000-000000\n")
    reason = r"CURRENT names '20000101-000000-000000', which has no manifest\.json.*make train"
    assert_refuses(service, tmp_path, reason)


@pytest.mark.parametrize("service", SERVICES)
def test_empty_current_pointer(service: str, tmp_path: Path) -> None:
    (tmp_path / mf.CURRENT_POINTER).write_text("\n")
    assert_refuses(service, tmp_path, r"CURRENT names '', which has no manifest\.json")


@pytest.mark.parametrize("service", SERVICES)
def test_newer_schema_version(service: str, bundle: Path) -> None:
    edit_manifest(bundle, lambda manifest: manifest.__setitem__("schema_version", 999))
    assert_refuses(service, bundle, rf"schema_version 999; this code reads {mf.SCHEMA_VERSION}.*make train")


@pytest.mark.parametrize("service", SERVICES)
def test_manifest_that_is_not_json(service: str, bundle: Path) -> None:
    (bundle / mf.MANIFEST_FILE).write_text("{ this is not json\n\n")
    assert_refuses(service, bundle, r"manifest\.json is not valid JSON")


@pytest.mark.parametrize("service", SERVICES)
def test_manifest_missing_a_field(service: str, bundle: Path) -> None:
    edit_manifest(bundle, lambda manifest: manifest.pop("embedding_dim"))
    assert_refuses(service, bundle, r"manifest\.json is invalid at embedding_dim")


# --- caught in the lifespan --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "name"),
    [
        ("retrieval", mf.INDEX_FILE),
        ("retrieval", mf.ANSWERS_FILE),
        ("ranking", mf.RERANKER_FILE),
        ("ranking", mf.EMBEDDINGS_FILE),
        ("ranking", mf.LEXICAL_FILE),
    ],
)
def test_required_file_deleted(service: str, name: str, bundle: Path) -> None:
    (bundle / name).unlink()
    assert_refuses(service, bundle, rf"{name} is missing from the bundle.*make train")


@pytest.mark.parametrize(("service", "name"), [("retrieval", mf.INDEX_FILE), ("ranking", mf.RERANKER_FILE)])
def test_truncated_file_fails_its_checksum(service: str, name: str, bundle: Path) -> None:
    path = bundle / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_refuses(service, bundle, rf"{name} does not match its manifest checksum")


@pytest.mark.parametrize(("service", "name"), [("retrieval", mf.INDEX_FILE), ("ranking", mf.RERANKER_FILE)])
def test_required_file_not_listed_in_manifest(service: str, name: str, bundle: Path) -> None:
    edit_manifest(bundle, lambda manifest: manifest["files"].pop(name))
    assert_refuses(service, bundle, rf"lists no '{name}'")


def test_retrieval_index_of_another_dimension(bundle: Path) -> None:
    n = mf.load_manifest(bundle).num_answers
    vectors = np.random.default_rng(0).standard_normal((n, 8)).astype(np.float32)  # (n, 8)
    index = faiss.IndexFlatIP(8)
    index.add(vectors)
    faiss.write_index(index, str(bundle / mf.INDEX_FILE))
    rehash(bundle, mf.INDEX_FILE)
    assert_refuses("retrieval", bundle, r"dimension mismatch .*index 8, encoder 384, manifest 384")


def test_retrieval_index_of_another_size(bundle: Path) -> None:
    index = faiss.read_index(str(bundle / mf.INDEX_FILE))
    index.remove_ids(np.arange(5, dtype=np.int64))
    faiss.write_index(index, str(bundle / mf.INDEX_FILE))
    rehash(bundle, mf.INDEX_FILE)
    assert_refuses("retrieval", bundle, r"size mismatch .*index 35, answers 40, manifest 40")


def test_ranking_embeddings_of_another_dimension(bundle: Path) -> None:
    n = mf.load_manifest(bundle).num_answers
    np.save(bundle / mf.EMBEDDINGS_FILE, np.zeros((n, 8), dtype=np.float32))
    rehash(bundle, mf.EMBEDDINGS_FILE)
    assert_refuses("ranking", bundle, r"inconsistent bundle .*384-d embeddings, answer table has 8")


def test_ranking_embeddings_with_too_few_rows(bundle: Path) -> None:
    embeddings = np.load(bundle / mf.EMBEDDINGS_FILE)
    np.save(bundle / mf.EMBEDDINGS_FILE, embeddings[:-3])
    rehash(bundle, mf.EMBEDDINGS_FILE)
    assert_refuses("ranking", bundle, r"answer table rows disagree: embeddings 37")


def test_ranking_refuses_other_reranker_features(bundle: Path) -> None:
    edit_manifest(bundle, lambda manifest: manifest["reranker_features"].append("question_length"))
    assert_refuses("ranking", bundle, r"trained with reranker features .*question_length")
