"""The admin surface both model services share: `POST /v1/admin/reload`, behind a bearer token.

Convention: the app keeps its settings on `app.state.settings` (with an `admin_token` field and
the service's env prefix) and its `ArtifactSlot` on `app.state.artifacts`.

    no token configured        -> 403, naming the variable that enables the endpoint
    no or wrong bearer token   -> 401 (`WWW-Authenticate: Bearer`)
    new bundle refused         -> 409 with the one-line reason; the old version keeps serving
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from common import manifest as mf
from common.errors import NotReady, ReloadRefused
from common.reloading import ArtifactSlot
from common.schemas import ErrorResponse, ReloadResponse

_bearer = HTTPBearer(auto_error=False, description="The service's admin token (`<PREFIX>ADMIN_TOKEN`).")


def require_admin(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the call through only with the configured admin token."""
    settings = request.app.state.settings
    token = settings.admin_token.get_secret_value() if settings.admin_token is not None else ""
    if not token:
        variable = f"{settings.model_config.get('env_prefix', '')}ADMIN_TOKEN"
        raise HTTPException(403, f"admin endpoints are disabled: set {variable} to enable them")
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(
            401,
            "missing or wrong admin token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def get_slot(request: Request) -> ArtifactSlot:
    slot = getattr(request.app.state, "artifacts", None)
    if slot is None or not slot.loaded:
        raise NotReady("service is still loading its artifacts")
    return slot


router = APIRouter(tags=["admin"], dependencies=[Depends(require_admin)])


@router.post(
    "/v1/admin/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or wrong admin token"},
        403: {"model": ErrorResponse, "description": "Admin endpoints are disabled (no token configured)"},
        409: {"model": ErrorResponse, "description": "The new bundle was refused; the old version keeps serving"},
        503: {"model": ErrorResponse, "description": "Still loading the first bundle"},
    },
)
async def reload(slot: Annotated[ArtifactSlot, Depends(get_slot)]) -> ReloadResponse:
    """Load the bundle the artifacts dir points at now and swap it in once loaded and warmed up."""
    try:
        outcome = await slot.reload()
    except mf.ArtifactError as exc:
        raise ReloadRefused(f"refused the new artifact bundle, still serving {slot.current.version}: {exc}") from None
    return ReloadResponse(
        status="reloaded" if outcome.changed else "unchanged",
        artifact_version=outcome.version,
        previous_version=outcome.previous_version,
    )
