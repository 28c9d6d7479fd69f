"""The files of the clustering's tasks (pipeline/dedup/distributed.py): local paths, or URLs.

A build at a URL (`s3://...`) whose tasks run on the Dask cluster has every worker read and
write the work folder, the signature files and the decisions there (pipeline/remote_steps.py).
A local file is written under a temporary name and renamed, as every build file is; an object
is one PUT, which a reader sees whole or not at all (pipeline/remote_jobs.py says what else
this relies on of a store). Listings at a URL are never taken from fsspec's cache: another
worker may have written since. A local path goes straight to the disk, as it always did.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.shards import WRITE_OPTIONS, read_shard, write_shard


def exists(place: str) -> bool:
    if not storage.is_url(place):
        return Path(place).exists()
    fs, path = storage.open_url(place)
    fs.invalidate_cache(path.rsplit("/", 1)[0])
    return fs.exists(path)


def write_table(table: pa.Table, place: str) -> None:
    if not storage.is_url(place):
        write_shard(table, Path(place))
        return
    fs, path = storage.open_url(place)
    with fs.open(path, "wb") as f:
        pq.write_table(table, f, **WRITE_OPTIONS)


def read_table(place: str, columns: list[str] | None = None) -> pa.Table:
    if not storage.is_url(place):
        return read_shard(Path(place), columns)
    fs, path = storage.open_url(place)
    with fs.open(path, "rb") as f:
        return pq.read_table(f, columns=columns)


def num_rows(place: str) -> int:
    if not storage.is_url(place):
        return pq.ParquetFile(place).metadata.num_rows
    fs, path = storage.open_url(place)
    with fs.open(path, "rb") as f:
        return pq.ParquetFile(f).metadata.num_rows


def listed(folder: str, pattern: str) -> list[str]:
    """The files in `folder` whose names match `pattern`, in order, named as `folder` is."""
    if not storage.is_url(folder):
        return sorted(str(path) for path in Path(folder).glob(pattern)) if Path(folder).exists() else []
    fs, path = storage.open_url(folder)
    fs.invalidate_cache(path)
    return sorted(fs.unstrip_protocol(found) for found in fs.glob(f"{path}/{pattern}"))


def remove(place: str, folder: bool = False) -> None:
    """A file, or a whole folder (`folder`: it may be gone already)."""
    if not storage.is_url(place):
        if folder:
            shutil.rmtree(place, ignore_errors=True)
        else:
            os.remove(place)
        return
    fs, path = storage.open_url(place)
    if not folder or fs.exists(path):
        fs.rm(path, recursive=folder)
