"""Liveness, readiness, settings from the environment, and the gateway's light import footprint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.config import GatewaySettings

if TYPE_CHECKING:
    from conftest import FakeRanking, FakeRetrieval

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_healthz_is_ok_even_when_upstreams_are_down(app: FastAPI, retrieval: FakeRetrieval) -> None:
    retrieval.failure = "connect"
    with TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok"}


def test_readyz_when_both_stages_are_ready(app: FastAPI) -> None:
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["artifact_version"] == "v1"
    assert "ranking: ready" in body["detail"]


def test_readyz_is_ready_without_ranking_and_says_so(app: FastAPI, ranking: FakeRanking) -> None:
    ranking.failure = "connect"
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert "ranking: not ready (unavailable: cannot connect" in response.json()["detail"]


@pytest.mark.parametrize("failure", ["connect", "timeout", "500"])
def test_readyz_is_503_when_retrieval_is_not_ready(app: FastAPI, retrieval: FakeRetrieval, failure: str) -> None:
    retrieval.failure = failure
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "not ready"
    assert response.json()["detail"].startswith("retrieval: ")


def test_settings_come_from_gateway_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RETRIEVAL_URL", "http://retrieval:9001")
    monkeypatch.setenv("GATEWAY_RANKING_TIMEOUT_S", "0.5")
    monkeypatch.setenv("GATEWAY_PORT", "9000")
    settings = GatewaySettings()
    assert str(settings.retrieval_url) == "http://retrieval:9001/"
    assert settings.ranking_timeout_s == 0.5
    assert settings.port == 9000


def test_gateway_imports_no_ml_stack() -> None:
    code = (
        "import sys\n"
        "from gateway.main import create_app\n"
        "create_app()\n"
        "heavy = {'tensorflow', 'keras', 'faiss', 'numpy'} & {name.split('.')[0] for name in sys.modules}\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", done.stdout
