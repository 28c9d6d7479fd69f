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

INPUT_SUFFIXES = (".parquet", ".jsonl", ".jsonl.gz")
# JSON may escape half of a UTF-16 pair (\\ud800); Python decodes it to a str no encoder accepts.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Fixed writer options: the same table gives the same bytes, so reruns are byte-identical.
WRITE_OPTIONS = dict(compression="zstd", use_dictionary=True, write_statistics=True)


@dataclass(frozen=True)
class InputShard:
    name: str  # part-00000 … : the name every stage gives this shard's outputs
    path: Path  # a Parquet file (JSONL already converted)
    source: Path  # what the user gave us
    docs: int


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
_checked: dict[tuple, tuple[list[InputShard], list[Quarantined]]] = {}


@dataclass(frozen=True)
class Quarantined:
    """An input file set aside instead of failing the build (scheduled builds)."""

    path: Path
    fingerprint: str  # of its bytes: the same file is not taken again, a rewritten one is
    reason: str  # the one-line error that would have failed the build


def prepare_inputs(spec: str | Path | list[str], convert_dir: Path) -> list[InputShard]:
    """Find, check and (for JSONL) convert the input; fails before any stage work starts.

    Checks every file's schema and null texts, that the input is not empty and that ids are
    unique across shards (the build's contract), with one-line errors naming the file. Files
    unchanged since an earlier check in this process are not read again.
    """
    return _prepared(spec, convert_dir, quarantine=False)[0]


def prepare_inputs_quarantining(
    spec: str | Path | list[str], convert_dir: Path
) -> tuple[list[InputShard], list[Quarantined]]:
    """As `prepare_inputs`, but a file that fails its checks is quarantined, not fatal: the rest
    is returned with the quarantined files and their one-line reasons. A quarantined file keeps
    its place in the shard names (a gap), so the others' names do not depend on it."""
    return _prepared(spec, convert_dir, quarantine=True)


def _prepared(spec, convert_dir: Path, quarantine: bool) -> tuple[list[InputShard], list[Quarantined]]:
    files = find_input_files(spec, convert_dir / "remote")
    key = (str(convert_dir), quarantine, *((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    if key not in _checked or not all(shard.path.exists() for shard in _checked[key][0]):  # conversions gone
        _checked[key] = _check_inputs(spec, files, convert_dir, quarantine)
    return _checked[key]


def _check_inputs(
    spec: str | Path | list[str], files: list[Path], convert_dir: Path, quarantine: bool
) -> tuple[list[InputShard], list[Quarantined]]:
    shards: list[InputShard] = []
    quarantined: list[Quarantined] = []
    seen_ids: dict[str, str] = {}
    total_rows = 0
    for i, source in enumerate(files):
        try:
            shard, ids = _check_file(f"part-{i:05d}", source, convert_dir, seen_ids)
        except InputError as exc:
            if not quarantine:
                raise
            quarantined.append(Quarantined(source, _fingerprint_or_empty(source), str(exc)))
            continue
        seen_ids.update(dict.fromkeys(ids, str(source)))
        total_rows += shard.docs
        shards.append(shard)
    if total_rows == 0 and (shards or not quarantined):
        raise InputError(f"{spec}: the input has no documents (all shards have 0 rows). Check --input.")
    return shards, quarantined


def _fingerprint_or_empty(path: Path) -> str:
    try:
        return fingerprint(path)
    except OSError:  # unreadable: its reason says so; nothing to recognise it by
        return ""


def _check_file(name: str, source: Path, convert_dir: Path, seen_ids: dict[str, str]) -> tuple[InputShard, list]:
    """One input file checked (and converted): its shard, and its ids."""
    if source.name.endswith(".parquet"):
        path = source
        table = read_input_shard(source)
    else:
        path = convert_dir / f"{name}.parquet"
        table = _converted_jsonl(source, path)
    duplicates = _first_known_id(table["id"], seen_ids)
    if duplicates is not None:
        dup_id, other = duplicates
        raise InputError(f"{source}: id {dup_id!r} also appears in {other}. Ids must be unique across the input.")
    return InputShard(name=name, path=path, source=source, docs=table.num_rows), table["id"].to_pylist()


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
