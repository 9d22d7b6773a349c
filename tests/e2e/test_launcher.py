"""`python -m launcher` (what `make serve` runs): serves, and restarts a service that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from launcher.stack import REPO_ROOT, ready
from test_stack import free_port

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def pid_of(app: str, port: int) -> int:
    """The pid of the uvicorn process serving `app` on `port` (scans /proc)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if app.encode() in b" ".join(cmdline) and str(port).encode() in cmdline:
                return int(entry.name)
    raise LookupError(f"no process serving {app} on port {port}")


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.3)


def test_launcher_restarts_a_service_that_dies(tiny_artifacts, tmp_path):
    ports = {"gateway": free_port(), "retrieval": free_port(), "ranking": free_port()}
    log = (tmp_path / "launcher.log").open("w")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--artifacts", str(tiny_artifacts), "--log-dir", str(tmp_path),
         "--gateway-port", str(ports["gateway"]), "--retrieval-port", str(ports["retrieval"]),
         "--ranking-port", str(ports["ranking"])],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    ranking = f"http://127.0.0.1:{ports['ranking']}"
    try:
        # Until the launcher has seen all three ready (its "ready:" line) it is still starting up, and a
        # service that dies then stops it instead of being restarted; the gateway alone is ready as
        # soon as retrieval is, maybe with ranking still loading.
        wait_for(lambda: "ready:" in (tmp_path / "launcher.log").read_text(), timeout=240)
        assert ready(gateway)
        os.kill(pid_of("ranking_service.main:create_app", ports["ranking"]), signal.SIGKILL)
        response = httpx.post(f"{gateway}/v1/recommend", json={"question": "Why do cats purr?", "k": 2}, timeout=30)
        assert response.status_code == 200, response.text  # served while ranking is down or coming back
        wait_for(lambda: ready(ranking), timeout=180)
        assert launcher.poll() is None, (tmp_path / "launcher.log").read_text()
        body = httpx.post(f"{gateway}/v1/recommend", json={"question": "Why do cats purr?", "k": 2}, timeout=30).json()
        assert body["reranked"] is True
        assert "restarting" in (tmp_path / "launcher.log").read_text()
    finally:
        os.killpg(launcher.pid, signal.SIGTERM)
        launcher.wait(30)


def test_group_ctrl_c_stops_a_launcher_started_in_the_background(tiny_artifacts, tmp_path):
    # A shell starts background jobs with SIGINT ignored; the uvicorn children still stop on it, and
    # the launcher must stop with them rather than restart them.
    ports = {"gateway": free_port(), "retrieval": free_port(), "ranking": free_port()}
    log_path = tmp_path / "launcher.log"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "launcher", "--artifacts", str(tiny_artifacts), "--log-dir", str(tmp_path),
         "--gateway-port", str(ports["gateway"]), "--retrieval-port", str(ports["retrieval"]),
         "--ranking-port", str(ports["ranking"])],
        cwd=REPO_ROOT, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        wait_for(lambda: "ready:" in log_path.read_text(), timeout=240)
        os.killpg(launcher.pid, signal.SIGINT)
        assert launcher.wait(60) == 0, log_path.read_text()
        assert "restarting" not in log_path.read_text()
        assert not ready(f"http://127.0.0.1:{ports['gateway']}")
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGTERM)
            launcher.wait(30)
