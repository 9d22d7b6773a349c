"""ArtifactSlot: swap in a new bundle atomically, refuse a broken one, follow the CURRENT pointer.

Bundles here are tiny fakes (a manifest and one checksummed file), loaded by a fake `load`; the
services' real bundles are covered in tests/test_hot_reload.py.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest

from common import manifest as mf
from common.reloading import ArtifactSlot

pytestmark = pytest.mark.anyio

MODEL_FILE = "model.txt"


@dataclass
class FakeModel:
    manifest: mf.Manifest
    weights: str
    loaded_on: int  # thread id


def load(bundle: Path) -> FakeModel:
    manifest = mf.load_manifest(bundle, (MODEL_FILE,))
    return FakeModel(manifest, (bundle / MODEL_FILE).read_text(), threading.get_ident())


def make_bundle(artifacts: Path, version: str, publish: bool = True) -> Path:
    bundle = artifacts / version
    bundle.mkdir(parents=True)
    (bundle / MODEL_FILE).write_text(f"weights of {version}")
    manifest = mf.Manifest(
        schema_version=mf.SCHEMA_VERSION,
        artifact_version=version,
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        embedding_dim=4,
        metric="inner_product",
        normalization="l2",
        index_factory="Flat",
        num_answers=1,
        encoder={"name": "fake", "max_length": 8},
        reranker_features=[],
        library_versions={},
        data_fingerprint="d",
        config_fingerprint="c",
        files=mf.hash_bundle_files(bundle),
    )
    mf.write_manifest(bundle, manifest)
    if publish:
        mf.publish(artifacts, version)
    return bundle


def truncate(bundle: Path) -> None:
    path = bundle / MODEL_FILE
    path.write_bytes(path.read_bytes()[:3])


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    make_bundle(tmp_path, "v1")
    return tmp_path


@pytest.fixture
def slot(artifacts: Path) -> ArtifactSlot[FakeModel]:
    slot = ArtifactSlot(artifacts, load, name="test")
    slot.load_initial(mf.resolve_bundle(artifacts))
    return slot


def test_initial_load_serves_the_current_bundle(slot: ArtifactSlot[FakeModel]) -> None:
    assert slot.current.version == "v1"
    assert slot.current.value.weights == "weights of v1"


def test_nothing_served_before_the_first_load(artifacts: Path) -> None:
    slot = ArtifactSlot(artifacts, load, name="test")
    assert not slot.loaded
    with pytest.raises(LookupError, match="no artifact loaded"):
        slot.current


async def test_reload_swaps_in_the_new_version(slot: ArtifactSlot[FakeModel], artifacts: Path) -> None:
    make_bundle(artifacts, "v2")
    outcome = await slot.reload()
    assert (outcome.changed, outcome.version, outcome.previous_version) == (True, "v2", "v1")
    assert slot.current.version == "v2"
    assert slot.current.value.weights == "weights of v2"


async def test_reload_loads_off_the_event_loop_thread(slot: ArtifactSlot[FakeModel], artifacts: Path) -> None:
    make_bundle(artifacts, "v2")
    await slot.reload()
    assert slot.current.value.loaded_on != threading.get_ident()


async def test_a_snapshot_taken_before_the_swap_keeps_the_old_version(
    slot: ArtifactSlot[FakeModel], artifacts: Path
) -> None:
    """What a request in flight holds is not changed under it."""
    in_flight = slot.current
    make_bundle(artifacts, "v2")
    await slot.reload()
    assert (in_flight.version, in_flight.value.weights) == ("v1", "weights of v1")
    assert slot.current.version == "v2"


async def test_reload_without_a_new_version_changes_nothing(slot: ArtifactSlot[FakeModel]) -> None:
    before = slot.current
    outcome = await slot.reload()
    assert (outcome.changed, outcome.version, outcome.previous_version) == (False, "v1", "v1")
    assert slot.current is before


async def test_concurrent_reloads_load_once(slot: ArtifactSlot[FakeModel], artifacts: Path) -> None:
    make_bundle(artifacts, "v2")
    outcomes = await asyncio.gather(slot.reload(), slot.reload())
    assert sorted(o.changed for o in outcomes) == [False, True]
    assert slot.current.version == "v2"


async def test_a_truncated_bundle_is_refused_and_the_old_one_keeps_serving(
    slot: ArtifactSlot[FakeModel], artifacts: Path
) -> None:
    truncate(make_bundle(artifacts, "v2"))
    with pytest.raises(mf.ArtifactError, match="model.txt does not match its manifest checksum"):
        await slot.reload()
    assert slot.current.version == "v1"


async def test_a_pointer_to_a_missing_bundle_is_refused(slot: ArtifactSlot[FakeModel], artifacts: Path) -> None:
    mf.publish(artifacts, "v9")
    with pytest.raises(mf.ArtifactError, match="CURRENT names 'v9', which has no manifest.json"):
        await slot.reload()
    assert slot.current.version == "v1"


async def test_any_load_failure_is_refused_with_a_one_line_reason(artifacts: Path) -> None:
    def flaky(bundle: Path) -> FakeModel:
        if bundle.name == "v2":
            raise ValueError("weights have the wrong shape\n(8, 4) vs (4, 4)")
        return load(bundle)

    slot = ArtifactSlot(artifacts, flaky, name="test")
    slot.load_initial(mf.resolve_bundle(artifacts))
    make_bundle(artifacts, "v2")
    with pytest.raises(mf.ArtifactError, match=r"cannot load .*v2: ValueError: weights have the wrong shape") as info:
        await slot.reload()
    assert "\n" not in str(info.value)
    assert slot.current.version == "v1"


async def test_pointer_moved_follows_current_and_skips_a_refused_bundle(
    slot: ArtifactSlot[FakeModel], artifacts: Path
) -> None:
    assert not slot.pointer_moved()
    truncate(make_bundle(artifacts, "v2"))
    assert slot.pointer_moved()
    with pytest.raises(mf.ArtifactError):
        await slot.reload()
    assert not slot.pointer_moved()  # refused once: not retried every poll
    make_bundle(artifacts, "v3")
    assert slot.pointer_moved()


async def test_a_bundle_dir_without_pointer_never_moves(artifacts: Path) -> None:
    slot = ArtifactSlot(artifacts / "v1", load, name="test")
    slot.load_initial(artifacts / "v1")
    make_bundle(artifacts, "v2")
    assert not slot.pointer_moved()
    assert (await slot.reload()).changed is False


async def test_the_watcher_refuses_a_broken_bundle_then_picks_up_a_good_one(
    slot: ArtifactSlot[FakeModel], artifacts: Path, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = asyncio.create_task(slot.watch(0.01))
    try:
        with anyio.fail_after(30):  # bounds a broken test; the waits below end in milliseconds
            truncate(make_bundle(artifacts, "v2"))
            while "refused new artifact bundle, still serving v1" not in caplog.text:
                await asyncio.sleep(0.01)
            assert slot.current.version == "v1"
            make_bundle(artifacts, "v3")
            while slot.current.version != "v3":
                await asyncio.sleep(0.01)
    finally:
        watcher.cancel()
    assert slot.current.value.weights == "weights of v3"
