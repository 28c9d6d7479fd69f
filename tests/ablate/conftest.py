"""A finished build of two sources from the sample slice, for the ablation tests (quality, dedup,
privacy and tokenizer stages; the model is what the ablations train)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.build import corpus_build
from tests.conftest import TEST_CONFIG

STAGES = ["quality", "dedup", "privacy", "tokenizer"]


@pytest.fixture(scope="session")
def ablation_build(sample_slice: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ablation_build")
    parts = sorted(str(p) for p in sample_slice.glob("part-*.parquet"))
    config = TEST_CONFIG | {
        "sources": [
            {"name": "first", "input": parts[0], "weight": 0.5},
            {"name": "rest", "input": parts[1:], "weight": 0.5},
        ]
    }
    with prefect_test_harness(server_startup_timeout=300):  # a loaded shared 2-core machine can take minutes
        corpus_build(None, str(out), config, STAGES, 2)
    return out
