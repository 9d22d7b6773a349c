"""The artifact manifest: validation, checksums, and the CURRENT pointer."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from common import manifest as mf


def make_bundle(root, version="v1", **overrides):
    bundle = root / version
    bundle.mkdir(parents=True)
    (bundle / mf.INDEX_FILE).write_bytes(b"index bytes")
    manifest = mf.Manifest(
        schema_version=mf.SCHEMA_VERSION,
        artifact_version=version,
        created_at=datetime.now(timezone.utc),
        embedding_dim=384,
        metric="inner_product",
        normalization="l2",
        index_factory="Flat",
        num_answers=1,
        encoder=mf.EncoderInfo(name="test", max_length=256),
        reranker_features=["dense_score"],
        library_versions={},
        data_fingerprint="d",
        config_fingerprint="c",
        files=mf.hash_bundle_files(bundle),
    )
    mf.write_manifest(bundle, manifest.model_copy(update=overrides))
    return bundle


def test_valid_bundle_loads(tmp_path):
    bundle = make_bundle(tmp_path)
    assert mf.load_manifest(bundle, (mf.INDEX_FILE,)).artifact_version == "v1"


def test_current_pointer_selects_the_bundle(tmp_path):
    make_bundle(tmp_path, "v1")
    make_bundle(tmp_path, "v2")
    mf.publish(tmp_path, "v2")
    assert mf.resolve_bundle(tmp_path) == tmp_path / "v2"
    assert not list(tmp_path.glob(".CURRENT*"))  # the temp file was renamed over, not left behind


def test_missing_artifacts_say_what_to_run(tmp_path):
    with pytest.raises(mf.ArtifactError, match="make train"):
        mf.resolve_bundle(tmp_path / "nothing")


def test_pointer_to_missing_version(tmp_path):
    (tmp_path / mf.CURRENT_POINTER).write_text("gone\n")
    with pytest.raises(mf.ArtifactError, match="'gone'"):
        mf.resolve_bundle(tmp_path)


def test_unknown_schema_version_is_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    raw = json.loads((bundle / mf.MANIFEST_FILE).read_text())
    raw["schema_version"] = 999
    (bundle / mf.MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(mf.ArtifactError, match="schema_version 999"):
        mf.load_manifest(bundle)


def test_garbage_manifest_is_refused(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / mf.MANIFEST_FILE).write_text("{not json")
    with pytest.raises(mf.ArtifactError, match="not valid JSON"):
        mf.load_manifest(bundle)


def test_missing_field_is_named(tmp_path):
    bundle = make_bundle(tmp_path)
    raw = json.loads((bundle / mf.MANIFEST_FILE).read_text())
    del raw["embedding_dim"]
    (bundle / mf.MANIFEST_FILE).write_text(json.dumps(raw))
    with pytest.raises(mf.ArtifactError, match="embedding_dim"):
        mf.load_manifest(bundle)


def test_truncated_file_fails_its_checksum(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / mf.INDEX_FILE).write_bytes(b"index")
    with pytest.raises(mf.ArtifactError, match="checksum"):
        mf.load_manifest(bundle, (mf.INDEX_FILE,))


def test_deleted_required_file(tmp_path):
    bundle = make_bundle(tmp_path)
    (bundle / mf.INDEX_FILE).unlink()
    with pytest.raises(mf.ArtifactError, match="missing"):
        mf.load_manifest(bundle, (mf.INDEX_FILE,))


def test_required_file_not_listed(tmp_path):
    bundle = make_bundle(tmp_path)
    with pytest.raises(mf.ArtifactError, match="lists no 'reranker.keras'"):
        mf.load_manifest(bundle, (mf.RERANKER_FILE,))
