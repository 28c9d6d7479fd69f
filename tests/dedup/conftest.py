"""Fixtures shared by the dedup tests."""

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def fortune_texts(shared_data: Path) -> list[str]:
    """Every fortune of the Debian fortunes-* packages (real short texts in 7 languages)."""
    with (shared_data / "corpora" / "fortunes_multilingual.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]
