"""The `corpus` command: bad usage ends in one clear line and exit code 2 (bad shards: test_bad_inputs.py)."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import SAMPLE

CORPUS = [sys.executable, "-m", "flows.cli"]


def corpus(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    # A hang guard, not a speed check: whole builds go through here too, and on a loaded 2-core
    # machine a small build can take minutes.
    return subprocess.run([*CORPUS, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def build(input_path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return corpus("build", "--input", str(input_path), "--out", str(out), *extra)


def test_missing_input_path_names_it(tmp_path):
    assert_one_line_error(build(tmp_path / "nowhere", tmp_path / "b"), "nowhere", "no such file")


def test_unknown_config_key_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("dedup:\n  minhash:\n    treshold: 0.7\n")
    result = build(SAMPLE, tmp_path / "b", "--config", str(config))
    assert_one_line_error(result, "dedup.minhash.treshold")


def test_impossible_override_is_rejected(tmp_path):
    assert_one_line_error(build(SAMPLE, tmp_path / "b", "--set", "dedup.minhash.threshold=1.5"), "threshold")


def test_unknown_stage_is_bad_usage(tmp_path):
    assert_one_line_error(build(SAMPLE, tmp_path / "b", "--stages", "quality,magic"), "magic")


def test_a_build_prints_bars_and_its_summary_but_no_log_lines(tmp_path, sample_table):
    """Library warnings (presidio's, logged when its analyzers load in the workers' fork server),
    Python's (runpy's, were a worker to run an imported main module again) and Prefect's own
    lines stay off the console."""
    path = tmp_path / "docs.jsonl"
    rows = sample_table.slice(0, 20).select(["id", "text"]).to_pylist()
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    result = build(path, tmp_path / "b", "--stages", "privacy")
    assert result.returncode == 0, result.stderr
    assert "corpus build summary" in result.stdout
    said = (result.stdout + result.stderr).splitlines()
    logged = [line for line in said if re.search(r"\| (WARNING|INFO) +\||Warning: ", line)]
    assert not logged, logged


def test_inspect_shows_schema_and_rows():
    result = corpus("inspect", str(SAMPLE / "books" / "part-00000.parquet"), "--rows", "2")
    assert result.returncode == 0, result.stderr
    assert "rows" in result.stdout and "text: string" in result.stdout


def test_report_without_manifest_is_bad_usage(tmp_path):
    assert_one_line_error(corpus("report", str(tmp_path)), "no manifest.json")


def test_jsonl_gz_input_is_converted_and_built(tmp_path, sample_table):
    rows = sample_table.slice(0, 40).select(["id", "text"]).to_pylist()
    path = tmp_path / "docs.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    out = tmp_path / "b"
    result = build(path, out, "--stages", "quality,dedup")
    assert result.returncode == 0, result.stderr
    converted = pq.read_table(out / "input" / "part-00000.parquet")
    assert converted["id"].to_pylist() == [r["id"] for r in rows]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["quality"]["docs_in"] == 40
    assert manifest["conservation"]["ok"]
    assert "corpus build summary" in result.stdout
