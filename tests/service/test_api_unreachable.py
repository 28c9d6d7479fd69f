"""A Prefect API that does not answer (not started yet, stopped, a wrong PREFECT_API_URL) gives
one line naming it, not an httpx traceback or "RuntimeError: Failed to reach API"."""

from __future__ import annotations

import socket

import pytest

from tests.conftest import SAMPLE
from tests.service.conftest import corpus


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


@pytest.mark.parametrize("args", [["serve"], ["run-deployment", "build", "--param", "out=b"]])
def test_unreachable_api_is_one_line(closed_port_url, args):
    result = corpus(closed_port_url, *args, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(lines) == 1
    assert lines[0].startswith(f"error: {closed_port_url}: no answer")


def test_a_build_against_a_stopped_server_is_one_line_naming_the_url_and_what_to_do(closed_port_url, tmp_path):
    result = corpus(closed_port_url, "build", "--input", str(SAMPLE), "--out", str(tmp_path / "b"), timeout=300)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: PREFECT_API_URL={closed_port_url}: no answer")
    assert "Start the server (prefect server start)" in lines[0] and "unset PREFECT_API_URL" in lines[0]
    assert not (tmp_path / "b" / "quality").exists()
