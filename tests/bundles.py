"""Helpers for hot-reload tests: new artifact versions made from the session's tiny bundle."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from common import manifest as mf


def copy_bundle(source: Path, artifacts: Path, version: str, publish: bool = True) -> Path:
    """A valid bundle `artifacts/<version>` with `source`'s files and `version` in its manifest.

    The 88 MB encoder, which nothing here modifies, is a symlink to the original; the manifest does
    not checksum itself, so only its `artifact_version` changes. `publish` points CURRENT at it, as
    the training job does.
    """
    bundle = artifacts / version
    shutil.copytree(source, bundle, ignore=shutil.ignore_patterns(mf.ENCODER_DIR))
    (bundle / mf.ENCODER_DIR).symlink_to(source.resolve() / mf.ENCODER_DIR, target_is_directory=True)
    manifest = json.loads((bundle / mf.MANIFEST_FILE).read_text())
    manifest["artifact_version"] = version
    (bundle / mf.MANIFEST_FILE).write_text(json.dumps(manifest))
    if publish:
        mf.publish(artifacts, version)
    return bundle


def truncate(path: Path) -> None:
    """Cut a file in half (what an interrupted copy leaves); its checksum no longer matches."""
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
