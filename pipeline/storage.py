"""Input behind fsspec URLs (`s3://` with s3fs, `memory://`, `gcs://`, `file://`); output URLs
are pipeline/remote.py's.

The stages memory-map their files (Parquet shards, token shards), so a remote input is copied
once into the build's input cache, mirroring its bucket paths, and the build reads the copies; a
rerun copies a file again only when its fsspec `ukey` (S3: the ETag) changed. `file://` URLs are
plain local paths. Credentials and endpoints come from the environment (`AWS_ACCESS_KEY_ID`,
`FSSPEC_S3_ENDPOINT_URL`, ...), never from the config.
"""

from __future__ import annotations

import glob
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.errors import BuildError, InputError


def is_url(spec: str | Path) -> bool:
    return "://" in str(spec)


def open_url(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and path of a URL, or one line naming it (e.g. s3:// without s3fs)."""
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise InputError(f"{url}: cannot open this URL ({str(exc).splitlines()[0]}).") from None


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def localize(url: str, cache_dir: Path) -> str | list[str]:
    """A local path for a `file://` URL; for any other URL, local copies of the files it names
    (a file, a folder's files or a glob's matches)."""
    fs, root = open_url(url)
    if is_local(fs):
        return root
    with store_errors(url, "read the input there"):
        if glob.has_magic(root):
            remote = fs.glob(root)
        elif fs.isdir(root):
            remote = fs.find(root)
        elif fs.exists(root):
            remote = [root]
        else:
            raise InputError(
                f"{url}: no such file or folder. Pass --input a folder, glob or file of Parquet/JSONL shards."
            )
        return [str(_fetch(fs, path, cache_dir / path.lstrip("/"))) for path in sorted(remote)]


@contextmanager
def store_errors(url: str | Path, action: str, error: type[Exception] = InputError) -> Iterator[None]:
    """Any failure of the store (no bucket, no credentials, no endpoint, no network) as one line
    naming the URL. The client libraries raise their own types (botocore's are not OSErrors),
    hence the broad catch, around store calls only; our own one-line errors pass through."""
    try:
        yield
    except (InputError, BuildError):
        raise
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "no detail"
        raise error(
            f"{url}: cannot {action} ({type(exc).__name__}: {reason}). Check that the bucket exists and that "
            "the credentials and endpoint in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "FSSPEC_S3_ENDPOINT_URL) reach it."
        ) from None


def _fetch(fs: fsspec.AbstractFileSystem, remote: str, local: Path) -> Path:
    from pipeline.shards import write_bytes

    marker = local.with_name(f".{local.name}.ukey")
    key = fs.ukey(remote)
    if local.exists() and marker.exists() and marker.read_text() == key:
        return local
    write_bytes(fs.cat_file(remote), local)
    write_bytes(key.encode(), marker)
    return local
