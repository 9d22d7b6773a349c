"""Ranking service settings (environment prefix RANKING_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import ModelServiceSettings


class RankingSettings(ModelServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RANKING_")

    port: int = Field(8002, ge=1, le=65535)
