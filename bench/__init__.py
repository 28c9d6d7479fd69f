"""Benchmarks: run by hand (`.venv/bin/python -m bench.<name>`), results in bench/results/.

A benchmark that needs data or a peer venv a clone lacks says so in one line and exits 0.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
# Development data beside the clone (the third-party texts of sample_data/README.md), not part of it.
SHARED_DATA = REPO.parent / "shared" / "data"
# Made by `make bench-envs`; the Makefile reads the same variable.
DATATROVE_VENV = Path(os.environ.get("DATATROVE_VENV", REPO / ".bench-venvs" / "datatrove")).absolute()
DATATROVE_PYTHON = DATATROVE_VENV / "bin" / "python"


class Skip(Exception):
    """What a benchmark needs and this checkout lacks."""


def needs_data(*paths: Path) -> None:
    """Skip unless every file of ../shared/data that the benchmark reads is there."""
    missing = [path for path in paths if not path.exists()]
    if missing:
        raise Skip(f"needs {_shown(missing[0])} (development data, not part of a clone)")


def needs_datatrove() -> None:
    """Skip unless the datatrove venv is there."""
    if not DATATROVE_PYTHON.exists():
        raise Skip(f"needs the datatrove venv {_shown(DATATROVE_VENV)} (make bench-envs)")


@contextmanager
def skipping(name: str) -> Iterator[None]:
    """Print `skip: bench.<name> needs ...` instead of a traceback; the run goes on (exit 0)."""
    try:
        yield
    except Skip as skip:
        print(f"skip: bench.{name} {skip}")


def _shown(path: Path) -> str:
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO.parent) else str(path)


def write_results(name: str, results: dict | list, markdown: str | None = None) -> Path:
    """bench/results/<name>.json with every figure, and <name>.md with the table people read."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if markdown is not None:
        path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return path
