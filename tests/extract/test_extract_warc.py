"""WARC files read with fastwarc: documents counted, large files cut into parts at record
boundaries, and damaged archives refused in one line naming the file and the record's offset."""

from __future__ import annotations

import shutil
import zlib
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.extract.warc import records, scan
from tests.extract.warcs import DOLMA_WARCS, crafted_warc, members

BIG = 1 << 30  # a part size no fixture reaches: one part per file


def test_dolma_warcs_hold_one_document_per_response_record():
    counted = [scan(path, BIG) for path in DOLMA_WARCS]
    assert [sum(p.docs for p in parts) for parts in counted] == [22, 15]
    assert dict(counted[0][0].records) == {"warcinfo": 1, "request": 22, "response": 22, "metadata": 1, "resource": 2}
    assert dict(counted[1][0].records) == {"warcinfo": 1, "request": 15, "response": 15, "metadata": 1, "resource": 2}


def test_a_large_warc_is_cut_into_parts_that_together_read_every_record_once():
    path = DOLMA_WARCS[0]
    parts = scan(path, 60_000)
    assert len(parts) > 2
    starts = {offset for offset in members(path)}
    assert all(part.start in starts for part in parts), "a part starts where a record (gzip member) starts"
    numbers = [r.number for part in parts for r in records(path, part.start, part.end, part.first_record)]
    assert numbers == list(range(1, 49))
    offsets = [r.offset for part in parts for r in records(path, part.start, part.end, part.first_record)]
    assert offsets == members(path)
    assert sum(p.docs for p in parts) == 22


def test_a_warc_compressed_as_one_gzip_stream_is_read_as_one_part(tmp_path):
    whole = zlib.compressobj(wbits=31)
    raw = b"".join(
        zlib.decompressobj(wbits=31).decompress(DOLMA_WARCS[1].read_bytes()[at:]) for at in members(DOLMA_WARCS[1])
    )
    path = tmp_path / "one-stream.warc.gz"
    path.write_bytes(whole.compress(raw) + whole.flush())
    parts = scan(path, 10_000)
    assert len(parts) == 1 and parts[0].docs == 15
    assert sum(1 for _ in records(path, 0, None, 1)) == 34


def refused(path: Path) -> str:
    with pytest.raises(InputError) as caught:
        scan(path, BIG)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_a_truncated_gzip_names_the_record_it_cuts(tmp_path):
    source = crafted_warc(tmp_path / "crafted.warc.gz")
    offsets = members(source)
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(source.read_bytes()[: offsets[5] + 40])  # inside the sixth record's gzip member
    assert f"record 6 at byte offset {offsets[5]}" in refused(cut)


def test_a_warc_cut_inside_a_payload_names_the_record(tmp_path):
    raw = tmp_path / "plain.warc"
    raw.write_bytes(
        b"".join(
            zlib.decompressobj(wbits=31).decompress(DOLMA_WARCS[0].read_bytes()[at:]) for at in members(DOLMA_WARCS[0])
        )
    )
    cut = tmp_path / "cut.warc"
    cut.write_bytes(raw.read_bytes()[:100_000])
    message = refused(cut)
    assert "payload cut off" in message and "truncated" in message


def test_a_file_that_is_not_a_warc_is_refused(tmp_path):
    path = tmp_path / "notes.warc.gz"
    shutil.copy(Path(__file__), tmp_path / "notes.txt")
    path.write_bytes(zlib.compress((tmp_path / "notes.txt").read_bytes()))
    assert "not a WARC file" in refused(path)


def test_a_record_with_a_broken_header_names_its_offset(tmp_path):
    source = DOLMA_WARCS[0]
    offsets = members(source)
    data = source.read_bytes()
    third = zlib.decompressobj(wbits=31).decompress(data[offsets[2] : offsets[3]])
    broken = third.replace(b"Content-Length: ", b"Content-Lenght: ", 1)
    packer = zlib.compressobj(wbits=31)
    path = tmp_path / "broken.warc.gz"
    path.write_bytes(data[: offsets[2]] + packer.compress(broken) + packer.flush() + data[offsets[3] :])
    message = refused(path)
    assert f"record 3 at byte offset {offsets[2]}" in message and "broken WARC record header" in message
