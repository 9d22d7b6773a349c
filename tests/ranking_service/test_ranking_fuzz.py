"""Fuzz the ranking service's OpenAPI with schemathesis: no 500, every response matches its schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from common.manifest import ANSWERS_FILE
from ranking_service.config import RankingSettings
from ranking_service.main import create_app
from tests.fuzzing import MODES, fuzz_schema, satisfy_unwritten_rules

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def schema(tiny_artifacts: Path) -> Iterator[schemathesis.BaseSchema]:
    """The app's own OpenAPI, called in-process; schemathesis runs the lifespan (loads the bundle)."""
    app = create_app(RankingSettings(artifacts_dir=tiny_artifacts))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()


@pytest.fixture(scope="module")
def ids(tiny_bundle: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (tiny_bundle / ANSWERS_FILE).read_text().splitlines()]


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_fuzz(
    schema: schemathesis.BaseSchema, mode: GenerationMode, ids: list[str], subtests: pytest.Subtests
) -> None:
    assert "POST /v1/rank" in fuzz_schema(schema, mode, subtests, satisfy_unwritten_rules(ids))
