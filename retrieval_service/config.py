"""Retrieval service settings (environment prefix RETRIEVAL_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ModelServiceSettings


class RetrievalSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RETRIEVAL_")

    port: int = Field(8001, ge=1, le=65535)
    # FAISS runs between model calls in the same batch thread, not beside them.
    faiss_threads: int = Field(1, ge=1)
