"""Start, watch and stop the retrieval, ranking and gateway services as local processes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
APPS = {
    "retrieval": "retrieval_service.main:create_app",
    "ranking": "ranking_service.main:create_app",
    "gateway": "gateway.main:create_app",
}


@dataclass
class Stack:
    """Handles on the running services; `urls[name]` is each one's base URL."""

    artifacts: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: {"gateway": 8000, "retrieval": 8001, "ranking": 8002})
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        return {name: f"http://{self.host}:{port}" for name, port in self.ports.items()}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",
            HF_HUB_OFFLINE="1",
            OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
            RETRIEVAL_ARTIFACTS_DIR=str(self.artifacts),
            RANKING_ARTIFACTS_DIR=str(self.artifacts),
            GATEWAY_RETRIEVAL_URL=self.urls["retrieval"],
            GATEWAY_RANKING_URL=self.urls["ranking"],
        )
        return env

    def start(self, name: str) -> None:
        # uvicorn picks uvloop and httptools (uvicorn[standard]) by itself; no access log: a line per
        # request would cost CPU that the services share with each other.
        command = [sys.executable, "-m", "uvicorn", APPS[name], "--factory", "--host", self.host,
                   "--port", str(self.ports[name]), "--log-level", "warning", "--no-access-log"]
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(command, cwd=REPO_ROOT, env=self.env(), stdout=out, stderr=subprocess.STDOUT if out else None)

    def stop(self, name: str, timeout: float = 15.0) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_ready(self, names: list[str] | None = None, timeout: float = 240.0) -> None:
        """Block until each service's /readyz answers 200; raise if one dies or time runs out."""
        pending = list(names or self.processes)
        deadline = time.monotonic() + timeout
        while pending:
            for name in list(pending):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(f"{name} service exited with code {process.returncode} during start-up"
                                       f"{self.log_tail(name)}")
                if ready(self.urls[name]):
                    pending.remove(name)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"services not ready after {timeout:.0f} s: {', '.join(pending)}")
            time.sleep(0.3)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a service's log, so a start-up failure says why without opening files."""
        if self.log_dir is None or not (self.log_dir / f"{name}.log").exists():
            return ""
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
        return "; its log ends:\n" + "\n".join(text)

    def start_all(self, timeout: float = 240.0) -> None:
        # Model services first: the gateway is only useful once retrieval answers.
        for name in ("retrieval", "ranking", "gateway"):
            self.start(name)
        self.wait_ready(timeout=timeout)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


def ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as response:
            return response.status == 200 and json.load(response).get("status") == "ready"
    except (urllib.error.URLError, OSError, ValueError):
        return False
