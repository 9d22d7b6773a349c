"""The app skeleton both model services share: bundle check, lifespan, batcher, hot reload, errors.

Each service supplies what differs (how to load and warm a bundle, how to run a batch, its router);
this module holds the wiring, so the two stay identical in behaviour. No heavy imports here: the
service's own callables import TensorFlow/FAISS when the lifespan starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from common import manifest as mf
from common.admin import router as admin_router
from common.batching import MicroBatcher
from common.errors import StartupError, install_error_handlers
from common.limits import BodySizeLimit
from common.reloading import ArtifactSlot
from common.schemas import Health, Readiness
from common.settings import ModelServiceSettings

probes = APIRouter()


@probes.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@probes.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(request: Request):
    """Artifacts are loaded and the model is warmed up."""
    slot = getattr(request.app.state, "artifacts", None)
    if slot is None or not slot.loaded:
        return JSONResponse(Readiness(status="loading").model_dump(), status_code=503)
    return Readiness(status="ready", artifact_version=slot.current.version)


def set_tf_threads(n: int) -> None:
    """Give TensorFlow a thread budget; must run before its first op (it cannot change afterwards)."""
    import tensorflow as tf  # only the model services call this, inside their lifespan

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # already initialised in this process (tests create several apps)
        pass


def create_model_app(
    *,
    name: str,
    description: str,
    settings: ModelServiceSettings,
    router: APIRouter,
    start: Callable[[], tuple[Callable[[Path], Any], Callable[[Any, list], list]]],
    weight: Callable[[Any], int] | None = None,
) -> FastAPI:
    """Build a model service app; refuses to start (SystemExit, one-line reason) on a bad bundle.

    Args:
        name: "retrieval" or "ranking" (log and error wording).
        settings: the service's settings.
        router: its endpoints (the admin reload endpoint is added here).
        start: called once in the lifespan, before any model work (set thread budgets, import the
            heavy modules); returns `load(bundle) -> model` (validated and warmed up) and
            `batch(model, items) -> results`.
        weight: how much of `batch_max_size` one item uses (default 1).
    """
    try:
        bundle = mf.resolve_bundle(settings.artifacts_dir)
        mf.load_manifest(bundle, verify_hashes=False)
    except mf.ArtifactError as exc:
        raise SystemExit(f"{name} service cannot start: {exc}") from None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        load, run_batch = start()
        slot = ArtifactSlot(settings.artifacts_dir, load, name=name)
        try:
            slot.load_initial(bundle)
        except mf.ArtifactError as exc:
            raise StartupError(f"{name} service cannot start: {exc}") from None
        # A batch takes the served model once: one batch, one artifact version, even mid-reload.
        batcher = MicroBatcher(
            lambda items: run_batch(slot.current.value, items),
            max_size=settings.batch_max_size,
            max_wait_s=settings.batch_max_wait_ms / 1000,
            name=f"{name}-batch",
            weight=weight,
        )
        batcher.start()
        watcher = asyncio.create_task(slot.watch(settings.reload_poll_s)) if settings.reload_poll_s > 0 else None
        app.state.artifacts, app.state.batcher = slot, batcher
        try:
            yield
        finally:
            app.state.artifacts = app.state.batcher = None
            if watcher is not None:
                watcher.cancel()
            await batcher.aclose()

    app = FastAPI(title=f"{name.capitalize()} service", version="1.0.0", lifespan=lifespan, description=description)
    app.state.artifacts = app.state.batcher = None
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(router)
    app.include_router(probes)
    app.include_router(admin_router)
    return app
