"""docker-compose.yml, the team deployment in the README: checked as Compose reads it. Running it
needs images from Docker Hub, which this project's machines cannot reach, so the file is checked
here and by `docker-compose config` when it is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_declares_every_named_volume_and_service_it_uses():
    spec = compose()
    services = spec["services"]
    declared = set((spec.get("volumes") or {}).keys())
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/", "~")):  # a named volume, not a bind mount
                assert source in declared, f"{name} uses volume {source!r}, not declared"
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on {needed!r}, not a service"


def test_compose_runs_api_replicas_workers_and_redis_against_postgres():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(services)
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert env["TRIAGE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["TRIAGE_REDIS_URL"].startswith("redis://redis:")
        # No default secret: every replica must sign the web app's cookies with the same one.
        assert env["TRIAGE_UI_SECRET"].startswith("${TRIAGE_UI_SECRET:?")
    # Replicas start after the one migration, never migrating at once.
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "--no-worker" in services["api"]["command"]
    # Long-running services come back after a crash or a host reboot; the migration runs once.
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
    assert "restart" not in services["migrate"]


def test_compose_shares_one_onnx_export_between_containers():
    spec = compose()
    services = spec["services"]
    folder = services["api"]["environment"]["TRIAGE_EMBEDDING_CACHE_DIR"]
    for name in ("api", "worker"):
        assert f"onnx:{folder}" in services[name]["volumes"], name
    assert "onnx" in spec["volumes"]
    # The image creates the folder as its user, so the new volume starts owned by that user.
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text(encoding="utf-8")
    user = dockerfile.index("USER triage")
    assert dockerfile.index(f"RUN mkdir -p {folder}") > user


def test_compose_config_accepts_the_file():
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose: .ci/run)")
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "--quiet"],
        env={**os.environ, "TRIAGE_UI_SECRET": "0" * 64},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # Without the secret, Compose refuses to start, saying which variable to set.
    missing = subprocess.run(
        [tool, "-f", str(COMPOSE), "config", "--quiet"],
        env={k: v for k, v in os.environ.items() if k != "TRIAGE_UI_SECRET"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode != 0 and "TRIAGE_UI_SECRET" in missing.stderr
