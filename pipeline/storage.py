"""Input behind fsspec URLs (`s3://` with s3fs, `memory://`, `gcs://`, `file://`).

The stages memory-map their files (Parquet shards, token shards), so a remote input is copied
once into the build's input cache, mirroring its bucket paths, and the build reads the copies; a
rerun copies a file again only when its fsspec `ukey` (S3: the ETag) changed. `file://` URLs are
plain local paths. Credentials and endpoints come from the environment (`AWS_ACCESS_KEY_ID`,
`FSSPEC_S3_ENDPOINT_URL`, ...), never from the config.
"""

from __future__ import annotations

import glob
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.errors import InputError


def is_url(spec: str | Path) -> bool:
    return "://" in str(spec)


def localize(url: str, cache_dir: Path) -> str | list[str]:
    """A local path for a `file://` URL; for any other URL, local copies of the files it names
    (a file, a folder's files or a glob's matches)."""
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # e.g. s3:// without s3fs installed
        raise InputError(f"{url}: cannot open this URL ({exc}).") from None
    if isinstance(fs, LocalFileSystem):
        return root
    if glob.has_magic(root):
        remote = fs.glob(root)
    elif fs.isdir(root):
        remote = fs.find(root)
    elif fs.exists(root):
        remote = [root]
    else:
        raise InputError(f"{url}: no such file or folder. Pass --input a folder, glob or file of Parquet/JSONL shards.")
    return [str(_fetch(fs, path, cache_dir / path.lstrip("/"))) for path in sorted(remote)]


def _fetch(fs: fsspec.AbstractFileSystem, remote: str, local: Path) -> Path:
    from pipeline.shards import write_bytes

    marker = local.with_name(f".{local.name}.ukey")
    key = fs.ukey(remote)
    if local.exists() and marker.exists() and marker.read_text() == key:
        return local
    write_bytes(fs.cat_file(remote), local)
    write_bytes(key.encode(), marker)
    return local
