"""The retrieval service under concurrency: micro-batching, and hot reload with requests in flight.

Apps are driven in-process through `httpx.ASGITransport`, with their lifespan entered on the test's
own event loop, so `asyncio.gather` really has the requests in the service at the same time.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common import manifest as mf
from retrieval_service.config import RetrievalSettings
from retrieval_service.main import create_app
from retrieval_service.retriever import Retriever
from tests.bundles import copy_bundle, truncate

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
V1, V2 = "20990101-000000-aaaaaa", "20990102-000000-bbbbbb"
BOUND_S = 120  # bounds a broken test; nothing here is meant to come near it
QUESTIONS = [json.loads(line)["question"] for line in (FIXTURES / "tiny_train.jsonl").read_text().splitlines()][:20]


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan on this event loop and talk to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://retrieval.test", timeout=BOUND_S) as client:
            yield client


def settings(artifacts: Path, **overrides: Any) -> RetrievalSettings:
    """No pointer watching unless a test asks for it."""
    return RetrievalSettings(**{"artifacts_dir": artifacts, "reload_poll_s": 0, **overrides})


@pytest.fixture
def artifacts(tiny_bundle: Path, tmp_path: Path) -> Path:
    """An artifacts dir of our own whose CURRENT names V1 (a copy of the tiny bundle)."""
    copy_bundle(tiny_bundle, tmp_path, V1)
    return tmp_path


async def retrieve(client: httpx.AsyncClient, question: str) -> httpx.Response:
    return await client.post("/v1/retrieve", json={"question": question, "k": 5})


def version_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["artifact_version"]


# --- micro-batching ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module scope, so that one app (one model load) serves the tests below


@pytest.fixture(scope="module")
async def batching(tiny_artifacts: Path) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """One app whose batches close when they hold len(QUESTIONS) questions, long before their wait
    would run out: a burst of that many questions is exactly one batch."""
    app = create_app(settings(tiny_artifacts, batch_max_size=len(QUESTIONS), batch_max_wait_ms=1000, admin_token=TOKEN))
    async with serving(app) as client:
        yield app, client


async def test_concurrent_questions_are_encoded_together_and_each_gets_its_own_answer(
    batching: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = batching
    retriever = app.state.artifacts.current.value
    expected = {}
    for question in QUESTIONS:  # each question on its own, straight through the retriever
        scores, rows = retriever.search(retriever.encode([question]), 5)
        expected[question] = ([retriever.store.ids[r] for r in rows[0]], scores[0].tolist())
    before = app.state.batcher.stats.batches
    responses = await asyncio.gather(*(retrieve(client, q) for q in QUESTIONS))
    assert app.state.batcher.stats.batches == before + 1
    for question, response in zip(QUESTIONS, responses):
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["question"] == question
        ids, scores = expected[question]
        assert [c["id"] for c in result["candidates"]] == ids, question
        assert [c["score"] for c in result["candidates"]] == pytest.approx(scores, abs=1e-4)


async def test_requests_with_different_k_and_several_questions_share_a_batch(
    batching: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = batching
    bodies = [  # 1 + 7 + 12 questions: one full batch by weight
        {"question": QUESTIONS[0], "k": 3},
        {"questions": QUESTIONS[1:8], "k": 7},
        {"questions": QUESTIONS[8:20], "k": 2, "include_embedding": True},
    ]
    retriever = app.state.artifacts.current.value
    before = app.state.batcher.stats.batches
    responses = await asyncio.gather(*(client.post("/v1/retrieve", json=body) for body in bodies))
    assert app.state.batcher.stats.batches == before + 1
    for body, response in zip(bodies, responses):
        assert response.status_code == 200, response.text
        questions = body.get("questions", [body.get("question")])
        _, rows = retriever.search(retriever.encode(questions), body["k"])  # this request on its own
        results = response.json()["results"]
        assert [r["question"] for r in results] == questions
        expected_ids = [[retriever.store.ids[i] for i in r] for r in rows]
        assert [[c["id"] for c in r["candidates"]] for r in results] == expected_ids
        assert all((r["embedding"] is not None) == body.get("include_embedding", False) for r in results)


async def test_reload_when_current_has_not_moved_is_unchanged(batching: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = batching
    served = app.state.artifacts.current.version
    response = await client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "unchanged", "artifact_version": served, "previous_version": served}


# --- hot reload --------------------------------------------------------------------------------


async def test_reload_with_requests_in_flight_switches_version_without_failures(
    artifacts: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """V2 is held at the loading stage until the test lets it go: every request meanwhile is served
    by V1; requests racing the swap succeed and name the version that served them; then all is V2."""
    loading, release = threading.Event(), threading.Event()
    load = Retriever.load.__func__

    def held_load(cls: type[Retriever], bundle: Path, verify_checksums: bool = True) -> Retriever:
        if bundle.name == V2:
            loading.set()
            assert release.wait(BOUND_S)
        return load(cls, bundle, verify_checksums)

    monkeypatch.setattr(Retriever, "load", classmethod(held_load))
    app = create_app(settings(artifacts, admin_token=TOKEN))
    with anyio.fail_after(BOUND_S):
        async with serving(app) as client:
            copy_bundle(tiny_bundle, artifacts, V2)
            reload = asyncio.create_task(client.post("/v1/admin/reload", headers=AUTH))
            assert await asyncio.to_thread(loading.wait, BOUND_S)
            during = await asyncio.gather(*(retrieve(client, q) for q in QUESTIONS))
            assert (await client.get("/readyz")).json()["artifact_version"] == V1
            release.set()
            response, *racing = await asyncio.gather(reload, *(retrieve(client, q) for q in QUESTIONS))
            after = await asyncio.gather(*(retrieve(client, q) for q in QUESTIONS[:5]))
            ready = (await client.get("/readyz")).json()
    assert [version_of(r) for r in during] == [V1] * len(QUESTIONS)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "reloaded", "artifact_version": V2, "previous_version": V1}
    assert {version_of(r) for r in racing} <= {V1, V2}
    assert [version_of(r) for r in after] == [V2] * 5
    assert ready == {"status": "ready", "artifact_version": V2, "detail": None}


async def test_a_truncated_new_bundle_is_refused_and_the_old_version_keeps_serving(
    artifacts: Path, tiny_bundle: Path
) -> None:
    async with serving(create_app(settings(artifacts, admin_token=TOKEN))) as client:
        truncate(copy_bundle(tiny_bundle, artifacts, V2) / mf.INDEX_FILE)
        refused = await client.post("/v1/admin/reload", headers=AUTH)
        still = await retrieve(client, QUESTIONS[0])
        ready = (await client.get("/readyz")).json()
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert detail.startswith(f"refused the new artifact bundle, still serving {V1}: "), detail
    assert "index.faiss does not match its manifest checksum" in detail and "\n" not in detail, detail
    assert version_of(still) == V1
    assert ready["artifact_version"] == V1


async def test_the_pointer_watcher_swaps_in_a_new_current(artifacts: Path, tiny_bundle: Path) -> None:
    async with serving(create_app(settings(artifacts, reload_poll_s=0.05))) as client:
        assert version_of(await retrieve(client, QUESTIONS[0])) == V1
        copy_bundle(tiny_bundle, artifacts, V2)  # publishes: CURRENT now names V2
        versions = []
        with anyio.fail_after(BOUND_S):
            while not versions or versions[-1] != V2:  # requests keep succeeding while it loads
                versions.append(version_of(await retrieve(client, QUESTIONS[len(versions) % len(QUESTIONS)])))
                await asyncio.sleep(0.05)
        ready = (await client.get("/readyz")).json()
    assert set(versions) <= {V1, V2}
    assert ready["artifact_version"] == V2


# --- admin authentication (no lifespan needed: refused before anything is loaded) ----------------


def test_reload_is_disabled_without_a_configured_token(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(settings(tiny_artifacts)))
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 403, response.text
    assert response.json() == {"detail": "admin endpoints are disabled: set RETRIEVAL_ADMIN_TOKEN to enable them"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="not-bearer"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="token-prefix"),
    ],
)
def test_reload_without_the_right_token_is_401(tiny_artifacts: Path, headers: dict[str, str]) -> None:
    client = TestClient(create_app(settings(tiny_artifacts, admin_token=TOKEN)))
    response = client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 401, response.text
    assert "admin token" in response.json()["detail"], response.text
    assert response.headers["www-authenticate"] == "Bearer"


def test_reload_with_the_right_token_before_loading_is_503(tiny_artifacts: Path) -> None:
    client = TestClient(create_app(settings(tiny_artifacts, admin_token=TOKEN)))  # no `with`: no lifespan
    response = client.post("/v1/admin/reload", headers=AUTH)
    assert response.status_code == 503, response.text
