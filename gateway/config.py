"""Gateway settings, read from `GATEWAY_*` environment variables."""

from typing import Annotated

from pydantic import Field, HttpUrl, NonNegativeInt, PositiveFloat, PositiveInt
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.limits import DEFAULT_GATEWAY_MAX_BODY_BYTES


class GatewaySettings(BaseSettings):
    """Where the two stages live and how long the gateway waits for them."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    retrieval_url: HttpUrl = HttpUrl("http://127.0.0.1:8001")
    ranking_url: HttpUrl = HttpUrl("http://127.0.0.1:8002")
    # Whole-call budgets (connect retries included); ranking's is short because we can degrade without it.
    retrieval_timeout_s: PositiveFloat = 5.0
    ranking_timeout_s: PositiveFloat = 2.0
    connect_timeout_s: PositiveFloat = 1.0
    max_connections: PositiveInt = 100
    # As many idle connections as open ones: with fewer, connections are closed and reopened under load.
    max_keepalive: NonNegativeInt = 100
    # Extra attempts after a connect error only (the request never reached the service, and
    # retrieve/rank are read-only anyway); never after a timeout or an error response.
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    max_body_bytes: NonNegativeInt = DEFAULT_GATEWAY_MAX_BODY_BYTES  # larger request bodies get 413
    host: str = "127.0.0.1"
    port: PositiveInt = 8000
