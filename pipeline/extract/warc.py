"""WARC and WET files read with fastwarc, streaming: checked once, split into parts, read part by part.

`scan` reads a file once when the build input is checked: it counts records by type, checks every
record (a header fastwarc cannot parse, a header without Content-Length, a payload shorter than its
Content-Length, a gzip member cut short) and cuts the file into parts of about `part_bytes` at record
boundaries, so that a 1 GB WARC becomes several shards, each read by one worker. `records` streams
the records of one part; no more than one record's payload is in memory at a time.

A part can start inside a file only where a record starts a gzip member of its own (Common Crawl
writes every record as one) or in an uncompressed file; a WARC compressed as one gzip stream is
read whole, as one part. Documents are `response` records (WARC) and `conversion` records (WET);
the other types (warcinfo, request, metadata, resource, revisit) are only counted.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastwarc.stream_io import GzipReader
from fastwarc.warc import ArchiveIterator, WarcRecord

from pipeline.errors import InputError

DOCUMENT_TYPES = ("response", "conversion")
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


@dataclass
class ScannedPart:
    """A run of whole records of one file: bytes [start, end), its first record's number."""

    start: int
    end: int | None
    first_record: int
    docs: int = 0
    payload_bytes: int = 0  # Content-Length of its document records
    records: Counter[str] = field(default_factory=Counter)


@contextmanager
def _opened(path: Path, start: int = 0) -> Iterator[tuple[ArchiveIterator, GzipReader | None]]:
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
        raw.seek(start)
        reader = GzipReader(raw) if gzipped else None
        yield ArchiveIterator(reader or raw, parse_http=False), reader


def _offset(record: WarcRecord, reader: GzipReader | None) -> int:
    # fastwarc's stream_pos is wrong for the first record of a gzipped file (and after a seek
    # into one); the gzip member's start is right, and is the record's start when each record
    # is a member of its own.
    return reader.frame_start_position() or 0 if reader is not None else record.stream_pos


def _where(path: Path, number: int, offset: int) -> str:
    return f"{path}: record {number} at byte offset {offset}"


def scan(path: Path, part_bytes: int) -> list[ScannedPart]:
    """Check every record of a WARC/WET file and cut it into parts; an `InputError` naming the file
    and the record's byte offset for a file that is not a WARC, a broken header or a cut-off end."""
    parts: list[ScannedPart] = []
    number, offset, members = 0, 0, True
    with _opened(path) as (records, reader):
        try:
            for number, record in enumerate(records, start=1):
                previous, offset = offset, _offset(record, reader)
                # One gzip stream for the whole file: every record reports the stream's start.
                members = members and (number == 1 or offset > previous)
                _check_header(path, record, number, offset)
                kind = str(record.record_type)
                length = record.content_length
                got = record.reader.consume()
                if got < length:
                    raise InputError(
                        f"{_where(path, number, offset)}: payload cut off ({got:,} of {length:,} bytes): the file is "
                        "truncated. Download it again, or drop it from the input."
                    )
                splittable = members and parts and offset - parts[-1].start >= part_bytes
                if not parts or splittable:
                    if parts:
                        parts[-1].end = offset
                    parts.append(ScannedPart(start=offset if parts else 0, end=None, first_record=number))
                part = parts[-1]
                part.records[kind] += 1
                if kind in DOCUMENT_TYPES:
                    part.docs += 1
                    part.payload_bytes += length
        except OSError as exc:  # fastwarc: "Invalid WARC header", or a deflate stream it cannot read
            if not parts:
                raise InputError(
                    f"{path}: not a WARC file (no WARC/1.x record at byte offset 0: {exc}). Pass WARC or WET files, "
                    "or Parquet/JSONL shards."
                ) from None
            # Where the broken record starts is known exactly only at a gzip member of its own.
            where = (
                _where(path, number + 1, reader.frame_start_position() or 0)
                if reader is not None and members
                else f"{path}: record {number + 1} (after the record at byte offset {offset})"
            )
            raise InputError(f"{where}: broken WARC record header ({exc}). Repair or drop the file.") from None
        gzipped = reader is not None
    if not parts:
        raise InputError(f"{path}: not a WARC file (no records). Pass WARC or WET files, or Parquet/JSONL shards.")
    if gzipped:
        _check_gzip_end(path, offset if members else 0, number)
    return parts


def _check_header(path: Path, record: WarcRecord, number: int, offset: int) -> None:
    for name in ("WARC-Type", "Content-Length"):
        if record.headers.get(name) is None:
            raise InputError(
                f"{_where(path, number, offset)}: broken WARC record header (no {name}). Repair or drop the file."
            )


def _check_gzip_end(path: Path, last: int, number: int) -> None:
    """fastwarc stops without a word at a gzip member cut short after the last whole record: read
    from the last record's member to the end, which must be exactly that member."""
    inflate = zlib.decompressobj(wbits=31)
    with open(path, "rb") as raw:
        raw.seek(last)
        consumed = 0
        while not inflate.eof and (chunk := raw.read(CHUNK)):
            try:
                inflate.decompress(chunk)
            except zlib.error as exc:
                raise InputError(
                    f"{_where(path, number, last)}: corrupt gzip data ({exc}). Repair or drop the file."
                ) from None
            consumed += len(chunk) - len(inflate.unused_data)
        rest = inflate.unused_data + raw.read()
    if not inflate.eof:
        raise InputError(
            f"{_where(path, number, last)}: the gzip stream is cut off: the file is truncated. Download it again, "
            "or drop it from the input."
        )
    if rest.strip(b"\0"):
        raise InputError(
            f"{_where(path, number + 1, last + consumed)}: the file ends inside this record (a gzip member cut "
            "short): the file is truncated. Download it again, or drop it from the input."
        )


@dataclass(frozen=True)
class Record:
    number: int  # 1-based, in the file
    offset: int  # byte offset of its start (of its gzip member)
    record: WarcRecord  # headers parsed; its payload not yet read


def records(path: Path, start: int, end: int | None, first_record: int) -> Iterator[Record]:
    """The records of bytes [start, end) of a file, in order, one at a time."""
    with _opened(path, start) as (found, reader):
        for number, record in enumerate(found, start=first_record):
            offset = _offset(record, reader)
            if end is not None and offset >= end:
                return
            yield Record(number, offset, record)
