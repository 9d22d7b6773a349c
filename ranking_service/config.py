"""Ranking service settings (environment prefix RANKING_)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RankingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RANKING_")

    artifacts_dir: Path = Field(Path("artifacts"), description="A bundle, or a directory with a CURRENT pointer.")
    host: str = "127.0.0.1"
    port: int = Field(8002, ge=1, le=65535)
    tf_threads: int = Field(1, ge=1)
    verify_checksums: bool = True
