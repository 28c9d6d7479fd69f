"""Benchmarks: run by hand (`.venv/bin/python -m bench.<name>`), results in bench/results/."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


def write_results(name: str, results: dict | list, markdown: str | None = None) -> Path:
    """bench/results/<name>.json with every figure, and <name>.md with the table people read."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if markdown is not None:
        path.with_suffix(".md").write_text(markdown, encoding="utf-8")
    return path
