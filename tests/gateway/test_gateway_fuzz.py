"""Fuzz the gateway's OpenAPI with schemathesis (fake upstreams): no 500, every response matches its schema."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans

from tests.fuzzing import MODES, fuzz_schema

pytestmark = pytest.mark.slow


@pytest.fixture
def schema(app: FastAPI) -> Iterator[schemathesis.BaseSchema]:
    """The gateway's own OpenAPI, called in-process; schemathesis runs the lifespan (opens the clients)."""
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_fuzz(schema: schemathesis.BaseSchema, mode: GenerationMode, subtests: pytest.Subtests) -> None:
    assert "POST /v1/recommend" in fuzz_schema(schema, mode, subtests)
