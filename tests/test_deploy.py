"""Deployment files: docker-compose.yml is valid and the images follow the Docker conventions."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TRAIN = "train"
SERVING = ("retrieval", "ranking", "gateway")
READS_ARTIFACTS = ("retrieval", "ranking")
ML_IMAGES = ("retrieval", "ranking", TRAIN)


@pytest.fixture(scope="module")
def compose_cli() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        if os.environ.get("REQUIRE_DOCKER_COMPOSE") == "1":
            pytest.fail("REQUIRE_DOCKER_COMPOSE=1 but docker-compose is not on PATH")
        pytest.skip("docker-compose is not on PATH (REQUIRE_DOCKER_COMPOSE=1 makes this a failure)")
    return path


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def dockerfile_of(services: dict[str, Any], name: str) -> Path:
    build = services[name]["build"]
    return (COMPOSE_FILE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).resolve()


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, with comments dropped and continuations joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        result.append((keyword.upper(), args.strip()))
        pending = ""
    return result


def read_only_mount(volume: str | dict[str, Any], source: str, target: str) -> bool | None:
    """True/False for a mount of source at target (short or long syntax), None if it is another."""
    if isinstance(volume, dict):
        if (volume.get("source"), volume.get("target")) != (source, target):
            return None
        return bool(volume.get("read_only", False))
    parts = volume.split(":")
    if parts[:2] != [source, target]:
        return None
    return len(parts) > 2 and "ro" in parts[2].split(",")


@pytest.mark.parametrize("profile_args", [[], ["--profile", TRAIN]], ids=["default", "train-profile"])
def test_compose_config_is_valid(compose_cli: str, profile_args: list[str]) -> None:
    result = subprocess.run(
        [compose_cli, "--file", str(COMPOSE_FILE), *profile_args, "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_service_but_train_has_healthcheck(services: dict[str, Any]) -> None:
    missing = [name for name, spec in services.items() if name != TRAIN and "healthcheck" not in spec]
    assert missing == []


@pytest.mark.parametrize("name", READS_ARTIFACTS)
def test_artifacts_are_mounted_read_only(services: dict[str, Any], name: str) -> None:
    mounts = [read_only_mount(v, "artifacts", "/artifacts") for v in services[name].get("volumes", [])]
    assert [m for m in mounts if m is not None] == [True]


def test_train_runs_only_under_train_profile(services: dict[str, Any]) -> None:
    assert services[TRAIN].get("profiles") == [TRAIN]


def test_gateway_waits_for_healthy_retrieval(services: dict[str, Any]) -> None:
    depends_on = services["gateway"]["depends_on"]
    assert depends_on["retrieval"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", [*SERVING, TRAIN])
def test_dockerfile_exists(services: dict[str, Any], name: str) -> None:
    assert dockerfile_of(services, name).is_file()


@pytest.mark.parametrize("name", SERVING)
def test_serving_image_has_healthcheck(services: dict[str, Any], name: str) -> None:
    keywords = [keyword for keyword, _ in instructions(dockerfile_of(services, name))]
    assert "HEALTHCHECK" in keywords


@pytest.mark.parametrize("name", [*SERVING, TRAIN])
def test_image_runs_as_non_root(services: dict[str, Any], name: str) -> None:
    users = [args for keyword, args in instructions(dockerfile_of(services, name)) if keyword == "USER"]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_gateway_image_skips_ml_requirements(services: dict[str, Any]) -> None:
    steps = [args for _, args in instructions(dockerfile_of(services, "gateway"))]
    assert not [step for step in steps if "requirements/ml.txt" in step]


@pytest.mark.parametrize("name", ML_IMAGES)
def test_nodeps_requirements_installed_without_deps(services: dict[str, Any], name: str) -> None:
    runs = [args for keyword, args in instructions(dockerfile_of(services, name)) if keyword == "RUN"]
    installs = [cmd for run in runs for cmd in run.split("&&") if "nodeps.txt" in cmd]
    assert installs, "nodeps.txt is never installed"
    assert all("--no-deps" in cmd for cmd in installs), installs
