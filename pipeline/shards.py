"""Parquet shard I/O: finding and checking input, reading shards, atomic writes, fingerprints.

Input is a folder, a glob or a single file of Parquet (`.parquet`) or JSON Lines (`.jsonl`,
`.jsonl.gz`, one object per line with a `text` field), local or behind an fsspec URL
(pipeline/storage.py), or a list of those. JSONL is converted to Parquet once, in
the build directory. Every check here fails with an `InputError` that names the file (and row)
and says what to do.

Raw web input (`needs_extraction`: WARC and WET archives, Parquet/JSONL with an `html` column) is
checked here too, record by record for an archive (pipeline/extract/warc.py), and becomes one or
more `RawPart`s: a file and a byte range of whole records, which the extract stage reads itself,
streaming. A build's input is all text or all raw web.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.errors import BuildError, InputError
from pipeline.sources import INPUT_SOURCE

TABLE_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
ARCHIVE_SUFFIXES = (".warc", ".warc.gz", ".wet", ".wet.gz")
INPUT_SUFFIXES = TABLE_SUFFIXES + ARCHIVE_SUFFIXES
WEB = "web"  # the raw format of WARC/WET archives and HTML tables: the extract stage's input
# A raw input is cut into parts of about this many (compressed) bytes at record boundaries: a 1 GB
# Common Crawl WARC of ~40k pages becomes 4 shards that workers extract side by side, each a few
# minutes of work whose output fits in memory.
RAW_PART_BYTES = 256 << 20
# JSON may escape half of a UTF-16 pair (\\ud800); Python decodes it to a str no encoder accepts.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# JSONL is read and converted in batches of about this much text: the converted file's row groups,
# which the shard plan cuts along, and what a 5 GB file holds in memory at once.
JSONL_BATCH_BYTES = 1 << 20
# Fixed writer options: the same table gives the same bytes, so reruns are byte-identical.
WRITE_OPTIONS = dict(compression="zstd", use_dictionary=True, write_statistics=True)


@dataclass(frozen=True)
class InputShard:
    name: str  # part-00000 … : the name every stage gives this shard's outputs
    path: Path  # a Parquet file (JSONL already converted), or a raw part's descriptor
    origin: Path  # what the user gave us
    docs: int
    source: str = INPUT_SOURCE  # the build source it belongs to (pipeline/sources.py)
    id_prefix: str = ""  # prepended to its ids: its source's ids clash with an earlier source's
    raw: str = ""  # the raw format (WEB) of a raw part; "" for text
    # The rows of the user's files it holds, (file, first row, row after the last), once the
    # shard plan made it (pipeline/shard_split.py); () for a shard that is a whole file as given.
    pieces: tuple[tuple[str, int, int], ...] = ()


@dataclass(frozen=True)
class RawPart:
    """A part of a raw input that its stage reads itself, streaming (a WARC is never one table in
    memory): bytes [start, end) of `file`, whole records from number `first_record` on (end None:
    to the end of the file), or every row of an HTML table. `docs` (its document records, counted
    when the input was checked) is what the job holds the stage's kept + removed rows to."""

    file: str
    format: str  # "warc" (WARC or WET records) or "html" (a Parquet table with an `html` column)
    docs: int
    payload_bytes: int  # of its documents' payloads (HTML): the bytes the funnel starts from
    start: int = 0
    end: int | None = None
    first_record: int = 1
    records: dict[str, int] = field(default_factory=dict)  # every record by WARC type
    fingerprint: str = ""  # of the file, so that the descriptor's own fingerprint covers it

    @classmethod
    def read(cls, path: Path) -> RawPart:
        return cls(**json.loads(Path(path).read_text()))

    def write(self, path: Path) -> None:
        write_json(asdict(self), path)


def needs_extraction(path: Path) -> bool:
    """Whether an input file is raw web that the extract stage turns into text: a WARC or WET
    archive, or a Parquet/JSONL table with an `html` column (which wins over a `text` column). The
    one place that decides it; an unreadable file is left to the text checks to name."""
    name = path.name
    if name.endswith(ARCHIVE_SUFFIXES):
        return True
    if name.endswith(".parquet"):
        try:
            return "html" in pq.read_schema(path).names
        except (pa.ArrowException, OSError):
            return False
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            first = next((line for line in f if line.strip()), "")
        record = json.loads(first)
    except (OSError, EOFError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(record, dict) and "html" in record


def find_input_files(spec: str | Path | list[str], remote_cache: Path) -> list[Path]:
    """Resolve a folder, glob, file or fsspec URL (copied into `remote_cache`), or a list of
    them, to a list of input files (sorted within each)."""
    if isinstance(spec, list):
        return [path for item in spec for path in find_input_files(item, remote_cache)]
    if storage.is_url(spec):
        return find_input_files(storage.localize(str(spec), remote_cache), remote_cache)
    spec_str = str(spec)
    if any(ch in spec_str for ch in "*?["):
        files = [Path(p) for p in sorted(glob.glob(spec_str, recursive=True))]
    elif Path(spec_str).is_dir():
        files = sorted(p for p in Path(spec_str).rglob("*") if p.is_file())
    elif Path(spec_str).exists():
        files = [Path(spec_str)]
    else:
        raise InputError(
            f"{spec_str}: no such file or folder. Pass --input a folder, glob or file of Parquet/JSONL shards."
        )
    files = [p for p in files if p.name.endswith(INPUT_SUFFIXES)]
    if not files:
        raise InputError(
            f"{spec_str}: no input files (*.parquet, *.jsonl, *.jsonl.gz, *.warc[.gz], *.wet[.gz]) found. "
            "Point --input at your shards."
        )
    return files


def fingerprint(path: Path) -> str:
    """sha256 of the file's bytes: a rerun skips work only when its input is truly unchanged."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def combined_fingerprint(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _jsonl_to_table(path: Path, column: str = "text", keep: tuple[str, ...] = ()) -> pa.Table:
    """`id` and the string field `column` of every line (and the optional fields `keep`)."""
    return pa.concat_tables(_jsonl_batches(path, column, keep))


def _jsonl_batches(path: Path, column: str = "text", keep: tuple[str, ...] = ()) -> Iterator[pa.Table]:
    """`_jsonl_to_table` streamed, JSONL_BATCH_BYTES of text at a time (at least one batch). An
    id made for a line without one is the file's name and the line's number in the file."""
    opener = gzip.open if path.name.endswith(".gz") else open
    ids, texts, size, batches = [], [], 0, 0
    kept: dict[str, list] = {name: [] for name in keep}

    def batch() -> pa.Table:
        columns = {"id": pa.array(ids, pa.string()), column: pa.array(texts, pa.string())}
        return pa.table(columns | {name: pa.array(values, pa.string()) for name, values in kept.items()})

    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as f:
            for row, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: row {row}: not valid JSON ({exc.msg}). Fix or drop that line.") from None
                text = record.get(column) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise InputError(
                        f'{path}: row {row}: no string "{column}" field. Every line needs {{"{column}": "..."}}.'
                    )
                if LONE_SURROGATE.search(text):
                    raise InputError(
                        f'{path}: row {row}: "{column}" holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without '
                        "its pair), which is not Unicode text. Fix the writer, or replace it with \\ufffd."
                    )
                ids.append(str(record.get("id", f"{path.name.split('.')[0]}-{row}")))
                texts.append(text)
                for name, values in kept.items():
                    values.append(record.get(name) if isinstance(record.get(name), str) else None)
                size += len(line)
                if size >= JSONL_BATCH_BYTES:
                    yield batch()
                    batches += 1
                    ids, texts, size = [], [], 0
                    kept = {name: [] for name in keep}
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: invalid UTF-8 at byte {exc.start}. Re-encode the file as UTF-8.") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc}). Check the file is complete and readable.") from None
    if ids or not batches:
        yield batch()


def _first_invalid_utf8_row(texts: pa.ChunkedArray) -> int | None:
    """Parquet does not validate its strings on read; every later stage assumes they are UTF-8."""
    try:
        texts.validate(full=True)
        return None
    except pa.ArrowInvalid:
        pass
    offset = 0
    for chunk in texts.chunks:  # the slow search runs only for a shard already known to be bad
        for i in range(len(chunk)):
            try:
                chunk.slice(i, 1).validate(full=True)
            except pa.ArrowInvalid:
                return offset + i
        offset += len(chunk)
    return None


def check_table(table: pa.Table, path: Path, first_row: int = 0) -> pa.Table:
    """The shard schema contract: a non-null string `text`; `id` made from row numbers if absent.
    `table` is rows `first_row`... of the file `path`: errors and made ids number rows in the file."""
    if "text" not in table.column_names:
        raise InputError(
            f'{path}: no column "text" (columns: {", ".join(table.column_names)}). Rename the text column to "text".'
        )
    text_type = table.schema.field("text").type
    if pa.types.is_large_string(text_type):
        table = table.set_column(table.column_names.index("text"), "text", table["text"].cast(pa.string()))
    elif not pa.types.is_string(text_type):
        raise InputError(
            f'{path}: column "text" has type {text_type}, expected string. Store the text as UTF-8 strings.'
        )
    bad_row = _first_invalid_utf8_row(table["text"])
    if bad_row is not None:
        raise InputError(
            f'{path}: row {first_row + bad_row}: "text" is not valid UTF-8. Re-encode the shard\'s text as UTF-8.'
        )
    if table["text"].null_count:
        first = pc.index(pc.is_null(table["text"]), True).as_py()
        # The first null row only: a streamed check has not seen the rest of the file.
        raise InputError(f'{path}: row {first_row + first}: "text" is null. Drop or fill the null rows.')
    if "id" not in table.column_names:
        stem = path.name.split(".")[0]
        ids = pa.array([f"{stem}-{i}" for i in range(first_row, first_row + table.num_rows)], pa.string())
        table = table.add_column(0, "id", ids)
    elif not pa.types.is_string(table.schema.field("id").type):
        table = table.set_column(table.column_names.index("id"), "id", table["id"].cast(pa.string()))
    return table


def read_shard(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None


def read_column(path: Path, name: str) -> pa.ChunkedArray:
    """One column of a shard file, through `ParquetFile`: ~0.1 ms, where `read_table` sets up a
    dataset on every call (~1.3 ms), and dedup's clustering reads each signature file a column at
    a time (20 columns a shard: on 16 shards of 3 MB that was half the clustering)."""
    try:
        table = pq.ParquetFile(path).read(columns=[name])
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    if not table.num_columns:  # ParquetFile leaves out a column it lacks, without a word
        raise InputError(f"{path}: no column {name!r}. Re-export the shard.")
    return table.column(0)


def _unreadable(path: Path, exc: Exception) -> InputError:
    return InputError(f"{path}: unreadable Parquet ({str(exc).splitlines()[0]}). Re-export the shard.")


def with_provenance(table: pa.Table, source: str, id_prefix: str = "") -> pa.Table:
    """The rows of an input shard as its source's documents: a `source` column (a `source` the
    input brought is kept as `input_source`) and, where the source's ids clash with an earlier
    source's, ids prefixed with `<source>/`."""
    if "source" in table.column_names:
        if "input_source" in table.column_names:
            raise InputError(
                'the input has columns "source" and "input_source"; rename "source" (the build names its sources there).'
            )
        table = table.rename_columns(["input_source" if c == "source" else c for c in table.column_names])
    if id_prefix:
        table = table.set_column(
            table.column_names.index("id"), "id", pc.binary_join_element_wise(id_prefix, table["id"], "")
        )
    return table.append_column("source", pa.array([source] * table.num_rows, pa.string()))


def read_input_shard(path: Path) -> pa.Table:
    """Read one input shard and check it against the schema contract."""
    return check_table(read_shard(path), path)


def read_rows(path: Path, start: int = 0, stop: int | None = None, origin: Path | None = None) -> Iterator[pa.Table]:
    """Rows [start, stop) of a Parquet file, checked, a row group (or less) at a time: a file
    larger than memory is never read whole. `origin`: the file the user gave (a JSONL file that
    `path` converts), named in errors and made ids."""
    origin = origin or path
    try:
        file = pq.ParquetFile(path)
        stop = file.metadata.num_rows if stop is None else stop
        first = 0  # the first row of the row group
        for group in range(file.metadata.num_row_groups):
            rows = file.metadata.row_group(group).num_rows
            if first < stop and first + rows > start:
                offset = first  # the row of the batch's first row
                for batch in file.iter_batches(row_groups=[group], use_threads=False):
                    lo, hi = max(start - offset, 0), min(stop - offset, batch.num_rows)
                    if lo < hi:
                        table = pa.Table.from_batches([batch.slice(lo, hi - lo)])
                        yield check_table(table, origin, offset + lo)
                    offset += batch.num_rows
            first += rows
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: unreadable Parquet ({str(exc).splitlines()[0]}). Re-export the shard.") from None


def checked_ids(path: Path) -> pa.Table:
    """Check a whole Parquet input file, streaming; the `id` column of its rows (what the build's
    own checks need, without its texts in memory)."""
    ids = [table.select(["id"]) for table in read_rows(path)]
    if not ids:  # no row groups: the schema alone says whether it would pass
        return read_input_shard(path).select(["id"])
    return pa.concat_tables(ids)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path`, renamed onto it when the block succeeds and removed when
    it fails: a killed or failed write never leaves a file that looks done."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # disk full, quota, a read-only mount: say which file and what to do
        raise BuildError(
            f"cannot write {path}: {exc.strerror or str(exc).splitlines()[0]}. Free space (or choose another --out) and "
            "rerun: finished shards are kept and this one is redone."
        ) from None
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(build_dir: Path) -> int:
    """Delete the temporary files of writes that a killed build left behind; call it holding the
    build lock, when no other process can be writing here. Returns how many were removed."""
    stale = [p for p in build_dir.rglob("*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def write_shard(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **WRITE_OPTIONS)


def write_bytes(data: bytes, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(data: dict, path: Path) -> None:
    write_bytes((json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode(), path)


# Inputs already checked in this process, by their files' (path, size, mtime): the CLI checks
# the input before any server starts, then the flow it runs in-process asks again; reading every
# text twice would double the cost of the check on a large corpus.
_checked: dict[tuple, tuple[list[InputShard], list[Quarantined]]] = {}


@dataclass(frozen=True)
class Quarantined:
    """An input file set aside instead of failing the build (scheduled builds)."""

    path: Path
    fingerprint: str  # of its bytes: the same file is not taken again, a rewritten one is
    reason: str  # the one-line error that would have failed the build


def prepare_inputs(
    spec: str | Path | list[str], convert_dir: Path, part_bytes: int = RAW_PART_BYTES
) -> list[InputShard]:
    """The input of a one-source build (`--input`): see `prepare_sources`."""
    return prepare_sources([(INPUT_SOURCE, spec)], convert_dir, part_bytes)


def prepare_sources(
    sources: list[tuple[str, str | Path | list[str]]], convert_dir: Path, part_bytes: int = RAW_PART_BYTES
) -> list[InputShard]:
    """Find, check and (for JSONL) convert every source's input, in order; fails before any stage
    work starts. Shards are numbered across sources (part-00000, ...), each tagged with its source.

    Checks every text file's schema and null texts, that no source is empty and that ids are
    unique within a source (the build's contract), with one-line errors naming the file. A source
    whose ids clash with an earlier source's has all its ids prefixed with `<source>/` (its shards'
    `id_prefix`, applied when a stage reads them). A source of raw web files (all raw, or all
    text) is checked record by record and cut into parts of about `part_bytes`. Files unchanged
    since an earlier check in this process are not read again.
    """
    return _prepared(sources, convert_dir, part_bytes, quarantine=False)[0]


def prepare_sources_quarantining(
    sources: list[tuple[str, str | Path | list[str]]], convert_dir: Path, part_bytes: int = RAW_PART_BYTES
) -> tuple[list[InputShard], list[Quarantined]]:
    """As `prepare_sources`, but a file that fails its own checks is quarantined, not fatal: the
    rest is returned with the quarantined files and their one-line reasons. A quarantined file
    keeps its place in the shard names (a gap), so the others' names do not depend on it. What is
    wrong with a source as a whole (its folder gone, raw and text mixed) still fails."""
    return _prepared(sources, convert_dir, part_bytes, quarantine=True)


def _prepared(sources, convert_dir: Path, part_bytes: int, quarantine: bool) -> tuple[list, list[Quarantined]]:
    found = [(name, spec, source_files(name, spec, convert_dir / "remote", len(sources))) for name, spec in sources]
    key = (
        str(convert_dir),
        part_bytes,
        quarantine,
        *((name, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)) for name, _, files in found),
    )
    if key not in _checked or not all(shard.path.exists() for shard in _checked[key][0]):  # conversions gone
        _checked[key] = _check_inputs(found, convert_dir, part_bytes, [] if quarantine else None)
    return _checked[key]


def source_files(name: str, spec: str | Path | list[str], remote_cache: Path, sources: int) -> list[Path]:
    """A source's input files; an error names the source when the build has several."""
    try:
        return find_input_files(spec, remote_cache)
    except InputError as exc:
        if sources == 1:
            raise
        raise InputError(f"source {name!r}: {exc}") from None


@contextmanager
def _quarantinable(origin: Path, quarantined: list[Quarantined] | None) -> Iterator[None]:
    """One file's checks: its InputError fails the build, or (quarantining) sets the file aside."""
    try:
        yield
    except InputError as exc:
        if quarantined is None:
            raise
        quarantined.append(Quarantined(origin, _fingerprint_or_empty(origin), str(exc)))


def _fingerprint_or_empty(path: Path) -> str:
    try:
        return fingerprint(path)
    except OSError:  # unreadable: its reason says so; nothing to recognise it by
        return ""


def _check_inputs(
    found: list[tuple[str, object, list[Path]]], convert_dir: Path, part_bytes: int, quarantined: list | None
) -> tuple[list[InputShard], list[Quarantined]]:
    shards: list[InputShard] = []
    seen_ids: dict[str, str] = {}  # every id of the text sources before, with its file
    stems: dict[str, Path] = {}  # every raw file's name: raw documents are named after their file
    number = 0  # the next shard's number; a quarantined file leaves a gap
    for source, spec, files in found:
        where = f"source {source!r} ({spec})" if len(found) > 1 else str(spec)
        raw = [path for path in files if needs_extraction(path)]
        if raw and len(raw) < len(files):
            text = next(path for path in files if path not in raw)
            raise InputError(
                f"{where}: the input mixes raw web files ({raw[0].name}) and text shards ({text.name}). Build them "
                "separately, or give them as separate sources."
            )
        set_aside = len(quarantined or [])
        if raw:
            own, number = _raw_shards(files, convert_dir, part_bytes, number, stems, quarantined)
        else:
            own, own_ids, number = _text_shards(files, convert_dir, number, quarantined)
            prefix = f"{source}/" if any(i in seen_ids for i in own_ids) else ""
            if prefix and (clash := next((prefix + i for i in own_ids if prefix + i in seen_ids), None)):
                raise InputError(f"source {source!r}: id {clash!r} occurs in an earlier source too; rename one.")
            seen_ids.update({prefix + i: f for i, f in own_ids.items()})
            own = [replace(shard, id_prefix=prefix) for shard in own]
        # Every file of a source quarantined is nothing to build, not an empty source.
        if sum(shard.docs for shard in own) == 0 and (own or len(quarantined or []) == set_aside):
            raise InputError(f"{where}: the input has no documents (all shards have 0 rows). Check --input.")
        shards += [replace(shard, source=source) for shard in own]
    return shards, quarantined or []


def _text_shards(
    files: list[Path], convert_dir: Path, first: int, quarantined: list | None
) -> tuple[list[InputShard], dict[str, str], int]:
    """Text files as shards numbered from `first`, their ids (each with its file) and the next
    number; an id twice in them is an error."""
    shards: list[InputShard] = []
    ids: dict[str, str] = {}
    for number, origin in enumerate(files, first):
        name = f"part-{number:05d}"
        with _quarantinable(origin, quarantined):
            if origin.name.endswith(".parquet"):
                path = origin
                table = checked_ids(origin)
            else:
                path = convert_dir / f"{name}.parquet"
                table = _converted_jsonl(origin, path)
            duplicates = _first_known_id(table["id"], ids)
            if duplicates is not None:
                dup_id, other = duplicates
                raise InputError(
                    f"{origin}: id {dup_id!r} also appears in {other}. Ids must be unique across the input."
                )
            ids.update(dict.fromkeys(table["id"].to_pylist(), str(origin)))
            shards.append(InputShard(name=name, path=path, origin=origin, docs=table.num_rows))
    return shards, ids, first + len(files)


def _raw_shards(
    files: list[Path], convert_dir: Path, part_bytes: int, first: int, stems: dict[str, Path], quarantined: list | None
) -> tuple[list[InputShard], int]:
    """Every raw file as one or more parts numbered from `first`, each a descriptor
    `part-NNNNN.raw.json` in `convert_dir`, and the next number. A document's id is its file's
    name and record number (or row), so file names must differ across the build (`stems`, updated
    here)."""
    shards: list[InputShard] = []
    number = first
    for origin in files:
        with _quarantinable(origin, quarantined):
            stem = raw_stem(origin)
            if stem in stems:
                raise InputError(
                    f"{origin}: another input file has the name {stems[stem].name}; documents are named after "
                    "their file, so raw web files need distinct names. Rename one."
                )
            parts = _raw_parts(origin, convert_dir, part_bytes)
            stems[stem] = origin
            for part in parts:
                path = convert_dir / f"part-{number:05d}.raw.json"
                part.write(path)
                shards.append(
                    InputShard(
                        name=path.name.removesuffix(".raw.json"), path=path, origin=origin, docs=part.docs, raw=WEB
                    )
                )
                number += 1
            continue
        number += 1  # quarantined: its gap
    return shards, number


def raw_stem(path: Path) -> str:
    """A raw file's name without its format suffixes: the stem of its documents' ids."""
    name = path.name
    for suffix in (*ARCHIVE_SUFFIXES, *TABLE_SUFFIXES):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _raw_parts(source: Path, convert_dir: Path, part_bytes: int) -> list[RawPart]:
    """The parts of one raw file; an archive's scan is reused while the file is unchanged."""
    source_fp = fingerprint(source)
    if not source.name.endswith(ARCHIVE_SUFFIXES):
        return [_html_table_part(source, convert_dir, source_fp)]
    marker = convert_dir / "_scans" / f"{hashlib.sha256(str(source).encode()).hexdigest()[:16]}.json"
    if marker.exists():
        cached = json.loads(marker.read_text())
        if cached.get("fingerprint") == source_fp and cached.get("part_bytes") == part_bytes:
            return [RawPart(**part) for part in cached["parts"]]
    from pipeline.extract.warc import scan  # fastwarc, needed only for archives

    parts = [
        RawPart(
            file=str(source),
            format="warc",
            docs=found.docs,
            payload_bytes=found.payload_bytes,
            start=found.start,
            end=found.end,
            first_record=found.first_record,
            records=dict(sorted(found.records.items())),
            fingerprint=source_fp,
        )
        for found in scan(source, part_bytes)
    ]
    write_json({"fingerprint": source_fp, "part_bytes": part_bytes, "parts": [asdict(p) for p in parts]}, marker)
    return parts


def _html_table_part(source: Path, convert_dir: Path, source_fp: str) -> RawPart:
    """An HTML table (Parquet, or JSONL converted to Parquet once) checked as one part: a string
    `html` column without nulls, and `url` a string column where present."""
    path = source
    if not source.name.endswith(".parquet"):
        path = convert_dir / "_html" / f"{raw_stem(source)}.parquet"
        marker = path.with_suffix(".source.json")
        if not (path.exists() and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == source_fp):
            write_shard(_jsonl_to_table(source, "html", keep=("url",)), path)
            write_json({"source": str(source), "fingerprint": source_fp}, marker)
    file = pq.ParquetFile(path)
    for column in ("html", "url"):
        index = file.schema_arrow.get_field_index(column)
        if index < 0:
            continue
        kind = file.schema_arrow.field(index).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise InputError(
                f'{source}: column "{column}" has type {kind}, expected string. Store it as UTF-8 strings.'
            )
    html = read_shard(path, columns=["html"])["html"]
    if html.null_count:
        first = pc.index(pc.is_null(html), True).as_py()
        raise InputError(
            f'{source}: row {first}: "html" is null ({html.null_count} null rows). Drop or fill those rows.'
        )
    payload = int(pc.sum(pc.binary_length(html)).as_py() or 0)
    return RawPart(file=str(path), format="html", docs=len(html), payload_bytes=payload, fingerprint=fingerprint(path))


def _converted_jsonl(source: Path, path: Path) -> pa.Table:
    """JSONL converted to Parquet once, streaming (a row group per batch); its ids. A rerun reuses
    the conversion while the source is unchanged."""
    marker = path.with_suffix(".source.json")
    source_fp = fingerprint(source)
    if path.exists() and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == source_fp:
        return read_shard(path, columns=["id"])
    ids = []
    with atomic_path(path) as tmp, ExitStack() as stack:
        writer = None
        for batch in _jsonl_batches(source):
            table = check_table(batch, source)
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(tmp, table.schema, **WRITE_OPTIONS))
            writer.write_table(table)
            ids.append(table.select(["id"]))
    write_json({"source": str(source), "fingerprint": source_fp}, marker)
    return pa.concat_tables(ids)


def _first_known_id(ids: pa.ChunkedArray, seen: dict[str, str]) -> tuple[str, str] | None:
    values = ids.to_pylist()
    if len(set(values)) != len(values):
        counts = pc.value_counts(ids).to_pylist()
        dup = next(c["values"] for c in counts if c["counts"] > 1)
        return dup, "the same file"
    for value in values:
        if value in seen:
            return value, seen[value]
    return None
