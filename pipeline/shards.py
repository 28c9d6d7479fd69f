"""Parquet shard I/O: finding and checking input, reading shards, atomic writes, fingerprints.

Input is a folder, a glob or a single file of Parquet (`.parquet`) or JSON Lines (`.jsonl`,
`.jsonl.gz`, one object per line with a `text` field), local or behind an fsspec URL
(pipeline/storage.py), or a list of those. JSONL is converted to Parquet once, in
the build directory. Every check here fails with an `InputError` that names the file (and row)
and says what to do.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.errors import BuildError, InputError
from pipeline.sources import INPUT_SOURCE

INPUT_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
# JSON may escape half of a UTF-16 pair (\\ud800); Python decodes it to a str no encoder accepts.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Fixed writer options: the same table gives the same bytes, so reruns are byte-identical.
WRITE_OPTIONS = dict(compression="zstd", use_dictionary=True, write_statistics=True)


@dataclass(frozen=True)
class InputShard:
    name: str  # part-00000 … : the name every stage gives this shard's outputs
    path: Path  # a Parquet file (JSONL already converted)
    origin: Path  # what the user gave us
    docs: int
    source: str = INPUT_SOURCE  # the build source it belongs to (pipeline/sources.py)
    id_prefix: str = ""  # prepended to its ids: its source's ids clash with an earlier source's


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
            f"{spec_str}: no input files (*.parquet, *.jsonl, *.jsonl.gz) found. Point --input at your shards."
        )
    return files


def fingerprint(path: Path) -> str:
    """sha256 of the file's bytes: a rerun skips work only when its input is truly unchanged."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def combined_fingerprint(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _jsonl_to_table(path: Path) -> pa.Table:
    opener = gzip.open if path.name.endswith(".gz") else open
    ids, texts = [], []
    try:
        with opener(path, "rt", encoding="utf-8", errors="strict") as f:
            for row, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: row {row}: not valid JSON ({exc.msg}). Fix or drop that line.") from None
                text = record.get("text") if isinstance(record, dict) else None
                if not isinstance(text, str):
                    raise InputError(f'{path}: row {row}: no string "text" field. Every line needs {{"text": "..."}}.')
                if LONE_SURROGATE.search(text):
                    raise InputError(
                        f'{path}: row {row}: "text" holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without '
                        "its pair), which is not Unicode text. Fix the writer, or replace it with \\ufffd."
                    )
                ids.append(str(record.get("id", f"{path.name.split('.')[0]}-{row}")))
                texts.append(text)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: invalid UTF-8 at byte {exc.start}. Re-encode the file as UTF-8.") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read ({exc}). Check the file is complete and readable.") from None
    return pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())})


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


def check_table(table: pa.Table, path: Path) -> pa.Table:
    """The shard schema contract: a non-null string `text`; `id` made from row numbers if absent."""
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
        raise InputError(f'{path}: row {bad_row}: "text" is not valid UTF-8. Re-encode the shard\'s text as UTF-8.')
    nulls = table["text"].null_count
    if nulls:
        first = pc.index(pc.is_null(table["text"]), True).as_py()
        raise InputError(f'{path}: row {first}: "text" is null ({nulls} null rows). Drop or fill those rows.')
    if "id" not in table.column_names:
        stem = path.name.split(".")[0]
        ids = pa.array([f"{stem}-{i}" for i in range(table.num_rows)], pa.string())
        table = table.add_column(0, "id", ids)
    elif not pa.types.is_string(table.schema.field("id").type):
        table = table.set_column(table.column_names.index("id"), "id", table["id"].cast(pa.string()))
    return table


def read_shard(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: unreadable Parquet ({str(exc).splitlines()[0]}). Re-export the shard.") from None


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
_checked: dict[tuple, list[InputShard]] = {}


def prepare_inputs(spec: str | Path | list[str], convert_dir: Path) -> list[InputShard]:
    """The input of a one-source build (`--input`): see `prepare_sources`."""
    return prepare_sources([(INPUT_SOURCE, spec)], convert_dir)


def prepare_sources(sources: list[tuple[str, str | Path | list[str]]], convert_dir: Path) -> list[InputShard]:
    """Find, check and (for JSONL) convert every source's input, in order; fails before any stage
    work starts. Shards are numbered across sources (part-00000, ...), each tagged with its source.

    Checks every file's schema and null texts, that no source is empty and that ids are unique
    within a source (the build's contract), with one-line errors naming the file. A source whose
    ids clash with an earlier source's has all its ids prefixed with `<source>/` (its shards'
    `id_prefix`, applied when a stage reads them). Files unchanged since an earlier check in this
    process are not read again.
    """
    found = [(name, spec, _source_files(name, spec, convert_dir, len(sources))) for name, spec in sources]
    key = (
        str(convert_dir),
        *((name, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)) for name, _, files in found),
    )
    if key not in _checked or not all(shard.path.exists() for shard in _checked[key]):  # conversions gone
        _checked[key] = _check_inputs(found, convert_dir)
    return _checked[key]


def _source_files(name: str, spec: str | Path | list[str], convert_dir: Path, sources: int) -> list[Path]:
    """A source's input files; an error names the source when the build has several."""
    try:
        return find_input_files(spec, convert_dir / "remote")
    except InputError as exc:
        if sources == 1:
            raise
        raise InputError(f"source {name!r}: {exc}") from None


def _check_inputs(found: list[tuple[str, object, list[Path]]], convert_dir: Path) -> list[InputShard]:
    shards: list[InputShard] = []
    seen_ids: dict[str, str] = {}  # every id of the sources before, with its file
    for source, spec, files in found:
        own_ids: dict[str, str] = {}
        own: list[tuple[str, Path, Path, int]] = []
        for origin in files:
            name = f"part-{len(shards) + len(own):05d}"
            if origin.name.endswith(".parquet"):
                path = origin
                table = read_input_shard(origin)
            else:
                path = convert_dir / f"{name}.parquet"
                table = _converted_jsonl(origin, path)
            duplicates = _first_known_id(table["id"], own_ids)
            if duplicates is not None:
                dup_id, other = duplicates
                raise InputError(
                    f"{origin}: id {dup_id!r} also appears in {other}. Ids must be unique across the input."
                )
            own_ids.update(dict.fromkeys(table["id"].to_pylist(), str(origin)))
            own.append((name, path, origin, table.num_rows))
        if not sum(docs for *_, docs in own):
            where = f"source {source!r} ({spec})" if len(found) > 1 else str(spec)
            raise InputError(f"{where}: the input has no documents (all shards have 0 rows). Check --input.")
        prefix = f"{source}/" if any(i in seen_ids for i in own_ids) else ""
        if prefix and (clash := next((prefix + i for i in own_ids if prefix + i in seen_ids), None)):
            raise InputError(f"source {source!r}: id {clash!r} occurs in an earlier source too; rename one.")
        seen_ids.update({prefix + i: f for i, f in own_ids.items()})
        shards += [InputShard(name, path, origin, docs, source, prefix) for name, path, origin, docs in own]
    return shards


def _converted_jsonl(source: Path, path: Path) -> pa.Table:
    """JSONL converted to Parquet once: a rerun reuses the conversion while the source is unchanged."""
    marker = path.with_suffix(".source.json")
    source_fp = fingerprint(source)
    if path.exists() and marker.exists() and json.loads(marker.read_text()).get("fingerprint") == source_fp:
        return read_input_shard(path)
    table = check_table(_jsonl_to_table(source), source)
    write_shard(table, path)
    write_json({"source": str(source), "fingerprint": source_fp}, marker)
    return table


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
