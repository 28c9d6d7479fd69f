"""A Prefect API that does not answer (not started yet, a wrong PREFECT_API_URL) gives one line
naming it, not an httpx traceback."""

from __future__ import annotations

import socket

import pytest

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
