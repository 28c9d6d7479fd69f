"""`corpus build --input <folder of .warc.gz>` end to end, and damaged or misrouted raw input
refused in one line by the command."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SAMPLE, TEST_CONFIG
from tests.extract.warcs import DOLMA_WARCS, crafted_warc, members
from tests.test_cli import assert_one_line_error, build

FIXTURES = DOLMA_WARCS[0].parent


def settings(config: dict, prefix: str = "") -> list[str]:
    """A nested config as --set section.key=value options."""
    found = []
    for key, value in config.items():
        if isinstance(value, dict):
            found += settings(value, f"{prefix}{key}.")
        else:
            found += ["--set", f"{prefix}{key}={json.dumps(value)}"]
    return found


@pytest.mark.slow
def test_a_folder_of_warcs_builds_end_to_end_with_the_extraction_funnel_in_the_report(tmp_path):
    out = tmp_path / "b"
    result = build(FIXTURES, out, *settings(TEST_CONFIG))
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"extract", "quality", "dedup", "privacy", "tokenizer", "pretrain"}
    assert manifest["conservation"]["ok"]
    extract = manifest["stages"]["extract"]
    assert extract["docs_in"] == 37 and extract["extra"]["records:request"] == 37
    assert manifest["stages"]["quality"]["docs_in"] == extract["docs_kept"]
    stats = json.loads((out / "report" / "stats.json").read_text())
    funnel = stats["extraction"]
    assert funnel["records"] == {"metadata": 2, "request": 37, "resource": 4, "response": 37, "warcinfo": 2}
    assert funnel["extractor"] == "trafilatura" and funnel["kept"] == extract["docs_kept"]
    assert {d["domain"] for d in funnel["top_domains"]} >= {"soldaini.net", "maria-antoniak.github.io"}
    page = (out / "report" / "report.html").read_text()
    assert "Extraction" in page and "Records by type" in page and "maria-antoniak.github.io" in page
    assert "extract" in result.stdout and "duplicate_url" in result.stdout


def test_a_truncated_archive_is_refused_in_one_line_naming_the_record(tmp_path):
    source = crafted_warc(tmp_path / "crafted.warc.gz")
    folder = tmp_path / "in"
    folder.mkdir()
    offsets = members(source)
    (folder / "cut.warc.gz").write_bytes(source.read_bytes()[: offsets[3] + 50])
    result = build(folder, tmp_path / "b")
    assert_one_line_error(result, "cut.warc.gz", f"record 4 at byte offset {offsets[3]}", "truncated")
    assert not (tmp_path / "b" / "extract").exists()


def test_a_gzip_file_that_is_not_a_warc_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    packer = zlib.compressobj(wbits=31)
    (folder / "page.warc.gz").write_bytes(packer.compress(b"<html>just a page</html>") + packer.flush())
    assert_one_line_error(build(folder, tmp_path / "b"), "page.warc.gz", "not a WARC file")


def test_a_text_stage_on_raw_input_asks_for_the_extract_stage(tmp_path):
    result = build(FIXTURES, tmp_path / "b", "--stages", "quality")
    assert_one_line_error(result, "sample-0000.warc.gz", "quality cannot read raw web input", "extract")


def test_extract_alone_writes_id_url_and_text(tmp_path):
    out = tmp_path / "b"
    result = build(FIXTURES, out, "--stages", "extract")
    assert result.returncode == 0, result.stderr
    table = pa.concat_tables(pq.read_table(p) for p in sorted((out / "extract").glob("part-*.parquet")))
    assert {"id", "url", "text"} <= set(table.column_names) and table.num_rows == 35
    assert not (out / "quality").exists()


def test_extract_named_on_text_shards_does_nothing(tmp_path):
    out: Path = tmp_path / "b"
    result = build(SAMPLE / "books" / "part-00000.parquet", out, "--stages", "extract")
    assert result.returncode == 0, result.stderr
    assert "extract" not in json.loads((out / "manifest.json").read_text())["stages"]
