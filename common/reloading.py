"""Hot reload: the artifact bundle a service serves, replaced atomically by a newer one.

The training job writes a new bundle directory, then swaps `artifacts/CURRENT` (`manifest.publish`).
An `ArtifactSlot` holds what the service serves now (`current`: the loaded object, its artifact
version and bundle path) and replaces it when asked (`reload()`, behind the admin endpoint) or when
the pointer moves (`watch()`, a polling task):

* Loading (files, checksums, shapes, model, warm-up) runs in a worker thread, off the event loop,
  while the old version keeps serving.
* The swap is one reference assignment under a lock. Readers take `current` once per batch or
  request and use that snapshot throughout, so work in flight finishes on the version it started
  on, and whatever a response reports is the version that produced it.
* A bundle that fails to load is refused: `ArtifactError` with a one-line reason, logged, and the
  old version keeps serving. The watcher does not retry a refused pointer until it changes.

Pure Python: the service passes a `load(bundle)` that builds and warms up its own object.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from common import manifest as mf

logger = logging.getLogger(__name__)

_MAX_REASON_CHARS = 500


class Loaded(Protocol):
    """What a slot can hold: anything that carries its bundle's manifest (Retriever, Ranker)."""

    manifest: mf.Manifest


T = TypeVar("T", bound=Loaded)


@dataclass(frozen=True)
class Served(Generic[T]):
    """One loaded bundle: the object that serves requests, its artifact version and its directory."""

    value: T
    version: str
    bundle: Path


@dataclass(frozen=True)
class ReloadOutcome:
    changed: bool
    version: str
    previous_version: str


class ArtifactSlot(Generic[T]):
    """The currently served artifact, and how to swap in the bundle `artifacts_dir` points at.

    Args:
        artifacts_dir: a bundle, or a folder with a CURRENT pointer (read again at every reload;
            a bundle folder itself never changes version).
        load: builds the served object from a bundle directory (validate, load, warm up). Runs in
            a worker thread on reloads; raises `ArtifactError` for a bad bundle.
        name: the service, for log lines.
    """

    def __init__(self, artifacts_dir: Path, load: Callable[[Path], T], name: str) -> None:
        self.artifacts_dir = Path(artifacts_dir)
        self.name = name
        self._load = load
        self._served: Served[T] | None = None
        self._swap_lock = threading.Lock()
        self._reload_lock = asyncio.Lock()
        self._refused: str | None = None  # the pointer target last refused, so the watcher skips it

    @property
    def current(self) -> Served[T]:
        """The served snapshot; take it once and use it for the whole request or batch."""
        served = self._served
        if served is None:
            raise LookupError(f"{self.name}: no artifact loaded yet")
        return served

    @property
    def loaded(self) -> bool:
        return self._served is not None

    def load_initial(self, bundle: Path) -> Served[T]:
        """Load `bundle` synchronously (start-up, before anything is served).

        Raises:
            ArtifactError: the bundle is missing, corrupt or inconsistent.
        """
        served = self._build(Path(bundle))
        self._swap(served)
        logger.info("%s: serving artifact %s from %s", self.name, served.version, served.bundle)
        return served

    async def reload(self) -> ReloadOutcome:
        """Load the bundle `artifacts_dir` names now and swap it in; a no-op if it is the served one.

        Concurrent calls run one after another (the second usually finds nothing to do).

        Raises:
            ArtifactError: the new bundle was refused (one-line reason); the old one keeps serving.
        """
        async with self._reload_lock:
            previous = self.current
            target = self._pointer_target()
            try:
                bundle = await asyncio.to_thread(mf.resolve_bundle, self.artifacts_dir)
                if bundle.resolve() == previous.bundle.resolve():
                    return ReloadOutcome(changed=False, version=previous.version, previous_version=previous.version)
                served = await asyncio.to_thread(self._build, bundle)
            except mf.ArtifactError as exc:
                self._refused = target
                logger.error("%s: refused new artifact bundle, still serving %s: %s", self.name, previous.version, exc)
                raise
            self._swap(served)
            self._refused = None
            logger.info("%s: now serving artifact %s from %s (was %s)", self.name, served.version, bundle,
                        previous.version)
            return ReloadOutcome(changed=True, version=served.version, previous_version=previous.version)

    def pointer_moved(self) -> bool:
        """CURRENT names a bundle other than the served one, and not one already refused."""
        target = self._pointer_target()
        if not target or target == self._refused or not self.loaded:
            return False
        return (self.artifacts_dir / target).resolve() != self.current.bundle.resolve()

    async def watch(self, interval_s: float) -> None:
        """Every `interval_s`, reload if CURRENT moved. Runs until cancelled; never raises."""
        logger.info("%s: watching %s every %.1f s", self.name, self.artifacts_dir / mf.CURRENT_POINTER, interval_s)
        while True:
            await asyncio.sleep(interval_s)
            try:
                if self.pointer_moved():
                    await self.reload()
            except mf.ArtifactError:
                pass  # logged by reload(); the old version keeps serving
            except Exception:
                logger.exception("%s: artifact watcher failed; still serving %s", self.name, self.current.version)

    # -- internals ---------------------------------------------------------------------------

    def _pointer_target(self) -> str | None:
        """What CURRENT names, or None when `artifacts_dir` is a bundle itself or has no pointer."""
        if (self.artifacts_dir / mf.MANIFEST_FILE).is_file():
            return None
        try:
            return (self.artifacts_dir / mf.CURRENT_POINTER).read_text().strip()
        except OSError:
            return None

    def _build(self, bundle: Path) -> Served[T]:
        try:
            value = self._load(bundle)
        except mf.ArtifactError:
            raise
        except Exception as exc:  # e.g. a model file that passes its checksum but will not load
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:_MAX_REASON_CHARS]
            raise mf.ArtifactError(f"cannot load {bundle}: {reason}") from exc
        return Served(value=value, version=value.manifest.artifact_version, bundle=bundle)

    def _swap(self, served: Served[T]) -> None:
        with self._swap_lock:
            self._served = served
