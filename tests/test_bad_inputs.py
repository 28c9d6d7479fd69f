"""Every broken input in tests/bad_inputs/ ends in one line naming the file (and row) and exit 2,
or in a documented handling; never a traceback, never a silent drop (DESIGN.md: clear errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.errors import InputError
from pipeline.shards import prepare_inputs, prepare_sources_quarantining
from tests.conftest import SAMPLE
from tests.test_cli import assert_one_line_error, build

BAD = Path(__file__).parent / "bad_inputs"

# case folder -> what the one error line must say (besides the file name)
REFUSED = {
    "truncated_parquet": ["part-00000.parquet", "unreadable Parquet"],
    "no_text_column": ["part-00000.parquet", 'no column "text"', "body"],
    "text_wrong_type": ["part-00000.parquet", "type int64, expected string"],
    "null_text": ["part-00000.parquet", "row 3", "null"],
    "invalid_utf8_parquet": ["part-00000.parquet", "row 5", "not valid UTF-8"],
    "invalid_utf8_jsonl": ["docs.jsonl", "invalid UTF-8 at byte"],
    "lone_surrogate_jsonl": ["docs.jsonl", "row 5", "lone UTF-16 surrogate"],
    "not_json_jsonl": ["docs.jsonl", "row 3", "not valid JSON"],
    "jsonl_without_text": ["docs.jsonl", "row 7", '"text"'],
    "zero_rows": ["no documents"],
    "duplicate_ids_across_shards": ["part-00001.parquet", "'doc-3'"],
}


def test_every_committed_bad_input_has_a_case_here():
    assert sorted(p.name for p in BAD.iterdir() if p.is_dir()) == sorted([*REFUSED, "empty_texts"])


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_bad_input_is_refused_in_one_line(case, tmp_path):
    out = tmp_path / "b"
    assert_one_line_error(build(BAD / case, out), *REFUSED[case])
    assert not (out / "quality").exists(), "no stage may start on bad input"


@pytest.mark.parametrize("case", sorted(set(REFUSED) - {"zero_rows"}))
def test_quarantine_sets_the_bad_file_aside_with_the_same_one_line_reason_and_keeps_the_rest(case, tmp_path):
    """What a scheduled build does instead of failing: the bad file is listed with the error that
    would have failed the build, the good ones are built under the names they would have had."""
    files = sorted(p for p in (BAD / case).iterdir())
    good = SAMPLE / "web" / "part-00000.parquet"
    with pytest.raises(InputError) as refused:
        prepare_inputs([str(good), *map(str, files)], tmp_path / "refused")
    # Two sources, the bad file in the second: each source's input is checked file by file.
    sources = [("web", str(good)), ("books", [str(f) for f in files])]
    shards, quarantined = prepare_sources_quarantining(sources, tmp_path / "kept")
    [bad] = quarantined
    assert bad.reason == str(refused.value) and str(bad.path) in bad.reason
    kept = [good, *(f for f in files if f != bad.path)]
    assert [shard.origin for shard in shards] == kept
    assert [shard.source for shard in shards] == ["web"] + ["books"] * (len(kept) - 1)
    order = [good, *files]  # a quarantined file leaves a gap in the shard names
    assert [shard.name for shard in shards] == [f"part-{order.index(f):05d}" for f in kept]


def test_empty_and_blank_texts_are_removed_with_a_reason(tmp_path):
    """Documented handling: empty or whitespace-only text is a document with nothing to keep."""
    out = tmp_path / "b"
    result = build(BAD / "empty_texts", out, "--stages", "quality")
    assert result.returncode == 0, result.stderr
    removed = pq.read_table(out / "quality" / "removed")
    blank = removed.filter(pc.equal(removed["reason"], "empty_text"))
    assert sorted(blank["id"].to_pylist()) == ["doc-2", "doc-3"]
    assert json.loads((out / "manifest.json").read_text())["conservation"]["ok"]


def test_folder_without_input_files_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    assert_one_line_error(build(tmp_path / "in", tmp_path / "b"), "no input files")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: permissions cannot make one unreadable")
def test_unreadable_file_is_refused(tmp_path):
    path = tmp_path / "in" / "part-00000.parquet"
    path.parent.mkdir()
    path.write_bytes((SAMPLE / "books" / "part-00000.parquet").read_bytes())
    path.chmod(0)
    assert_one_line_error(build(path.parent, tmp_path / "b"), "part-00000.parquet")


def test_a_50_mb_document_is_removed_unread(sample_table, tmp_path):
    """Documented handling: a document over quality.max_chars is removed as doc_too_long before
    language ID and the rules, so it costs neither minutes nor gigabytes."""
    texts = sample_table["text"].to_pylist()
    huge = "\n\n".join(texts)
    huge = "\n\n".join([huge] * (50_000_000 // len(huge.encode()) + 1))
    path = tmp_path / "in" / "part-00000.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"id": ["huge", "ordinary"], "text": [huge, texts[0]]}), path)
    out = tmp_path / "b"
    result = build(path.parent, out, "--stages", "quality")
    assert result.returncode == 0, result.stderr
    removed = pq.read_table(out / "quality" / "removed")
    assert dict(zip(removed["id"].to_pylist(), removed["reason"].to_pylist())).get("huge") == "doc_too_long"


def test_an_input_checked_once_is_not_read_again_until_a_file_changes(tmp_path, monkeypatch):
    """The CLI checks the input, then the flow asks again in the same process: one read, unless
    a file changed in between (then the new bytes are checked, and a bad shard is still caught)."""
    from pipeline import shards

    src = tmp_path / "in"
    src.mkdir()
    for path in sorted((SAMPLE / "other").glob("part-*.parquet"))[:2]:
        (src / path.name).write_bytes(path.read_bytes())
    reads = []
    real_read = shards.checked_ids
    monkeypatch.setattr(shards, "checked_ids", lambda p: reads.append(p) or real_read(p))
    first = shards.prepare_inputs(str(src), tmp_path / "build" / "input")
    assert shards.prepare_inputs(str(src), tmp_path / "build" / "input") == first
    assert len(reads) == 2
    bad = BAD / "null_text"
    (src / "part-00001.parquet").write_bytes(next(bad.glob("*.parquet")).read_bytes())
    with pytest.raises(InputError, match="part-00001.parquet"):
        shards.prepare_inputs(str(src), tmp_path / "build" / "input")
