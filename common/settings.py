"""Settings shared by the two model services; each subclass adds its env prefix and own fields."""

from pathlib import Path

from pydantic import Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings

from common.limits import DEFAULT_MAX_BODY_BYTES


class ModelServiceSettings(BaseSettings):
    artifacts_dir: Path = Field(Path("artifacts"), description="A bundle, or a directory with a CURRENT pointer.")
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    # Processes share the cores. All model and index work runs in the one batch thread, one batch at
    # a time, so a service keeps to about tf_threads cores. With both model services at 1, the
    # defaults fit a 2-core machine: one core each, the gateway's event loop in the gaps (README,
    # Configuration).
    tf_threads: int = Field(1, ge=1)
    verify_checksums: bool = True
    # Micro-batching: concurrent requests are served together by one model call.
    batch_max_size: PositiveInt = Field(32, description="Most requests (retrieval: questions) in one batch.")
    # 0 by default: under load, requests queue while the previous batch runs and the next batch takes
    # them all without waiting; a lone request would only be delayed (2 ms, in both stages, cost
    # concurrency 1 about 5 ms end to end and bought no throughput at concurrency 8 or 32).
    batch_max_wait_ms: float = Field(
        0.0, ge=0, le=1000, description="How long a batch waits for more requests after its first (0: no waiting)."
    )
    # Hot reload (see common/reloading.py).
    admin_token: SecretStr | None = Field(None, description="Bearer token for POST /v1/admin/reload; unset: disabled.")
    reload_poll_s: float = Field(5.0, ge=0, description="How often to check CURRENT for a new bundle; 0: never.")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=0, description="Larger request bodies get 413.")
