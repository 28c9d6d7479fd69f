"""A folder of evaluation benchmarks: one file per benchmark, its items' text streamed.

`<name>.jsonl` (or `.jsonl.gz`) with one JSON object per line, or `<name>.parquet` with one row
per item; the file's name without its suffixes names the benchmark. An item's text is its
`text_fields` joined by newlines in the order given (a question and its answer are checked as
one text, as lm-eval checks a prompt and its target), or with no fields given every string and
list-of-strings field in the item's order (ids and labels too: too short to make an n-gram of
their own, they only join the text beside them).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError

SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")
BATCH = 10_000


def benchmark_files(folder: str) -> dict[str, Path]:
    """{benchmark name: file}, by name; an error naming the folder when it holds none."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(
            f"decontamination.benchmarks: {folder}: no such folder. Give a folder of JSONL or Parquet files."
        )
    files: dict[str, Path] = {}
    for path in sorted(root.iterdir()):
        suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        name = path.name[: -len(suffix)]
        if name in files:
            raise InputError(f"{path}: benchmark {name!r} is also {files[name]}. Keep one file per benchmark.")
        files[name] = path
    if not files:
        raise InputError(f"decontamination.benchmarks: {folder}: no .jsonl or .parquet files. One file per benchmark.")
    return files


def _text(item: dict[str, Any], fields: list[str]) -> str:
    parts = []
    for key in fields or list(item):
        value = item.get(key)
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts.extend(value)
    return "\n".join(parts)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, item) of every item in the file."""
    if path.name.endswith(".parquet"):
        try:
            reader = pq.ParquetFile(path)
            row = 0
            for batch in reader.iter_batches(batch_size=BATCH):
                for item in batch.to_pylist():
                    row += 1
                    yield row, item
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a readable Parquet file ({exc}). Rewrite it or remove it.") from None
        return
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for row, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: row {row} is not JSON ({exc.msg}). Fix or remove the line.") from None
            if not isinstance(item, dict):
                raise InputError(f"{path}: row {row} is not a JSON object. One item per line, as an object.")
            yield row, item


def item_texts(path: Path, fields: list[str]) -> Iterator[str]:
    """The text of every item; an error when a named field is in no item of the file."""
    seen: set[str] = set()
    for _, item in _records(path):
        seen.update(k for k in fields if k in item)
        yield _text(item, fields)
    missing = [k for k in fields if k not in seen]
    if missing and len(missing) == len(fields):
        raise InputError(
            f"{path}: no item has the field {missing[0]!r}. Set decontamination.text_fields to this file's fields."
        )
