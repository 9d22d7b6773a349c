"""Retrieval service settings (environment prefix RETRIEVAL_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RetrievalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_")

    artifacts_dir: Path = Field(Path("artifacts"), description="A bundle, or a directory with a CURRENT pointer.")
    host: str = "127.0.0.1"
    port: int = Field(8001, ge=1, le=65535)
    # Processes share the cores: TensorFlow and FAISS each get a small, explicit thread budget.
    tf_threads: int = Field(1, ge=1)
    faiss_threads: int = Field(1, ge=1)
    verify_checksums: bool = True
