"""Retrieval service settings (environment prefix RETRIEVAL_)."""

from pathlib import Path

from pydantic import Field, PositiveInt, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.limits import DEFAULT_MAX_BODY_BYTES


class RetrievalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_")

    artifacts_dir: Path = Field(Path("artifacts"), description="A bundle, or a directory with a CURRENT pointer.")
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    # Processes share the cores: TensorFlow and FAISS each get a small, explicit thread budget. All
    # model and index work runs in the one batch thread, one batch at a time, so this service keeps
    # to about tf_threads cores (FAISS runs between model calls, not beside them). With the ranking
    # service the same, the defaults fit the 2-core machine: one core each, the gateway's event loop
    # in the gaps (see README, Configuration).
    tf_threads: int = Field(1, ge=1)
    faiss_threads: int = Field(1, ge=1)
    verify_checksums: bool = True
    # Micro-batching: concurrent requests are served together by one model call.
    batch_max_size: PositiveInt = Field(32, description="Most questions encoded (and searched) in one batch.")
    batch_max_wait_ms: float = Field(
        2.0, ge=0, le=1000, description="How long a batch waits for more requests after its first (0: no waiting)."
    )
    # Hot reload (see common/reloading.py).
    admin_token: SecretStr | None = Field(None, description="Bearer token for POST /v1/admin/reload; unset: disabled.")
    reload_poll_s: float = Field(5.0, ge=0, description="How often to check CURRENT for a new bundle; 0: never.")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=0, description="Larger request bodies get 413.")
