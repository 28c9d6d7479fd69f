"""A build directory behind an fsspec URL (`s3://bucket/builds/x`, `memory://` in tests).

The stages memory-map their files and rename them into place, which object stores cannot do, so
a build at a URL runs in a local working copy, a cache: `$CORPUS_CACHE_DIR/builds/<name>-<hash of
the URL>` (default `~/.cache/corpus`). Before the build, `pull` fetches what the remote holds that
the copy has not seen, so a rerun on any machine skips the shards already done, as a local rerun
does; after every stage, `push` sends the files whose bytes changed, so a crash loses at most the
stage in flight. Nothing is ever deleted on the remote.

With a Dask cluster, the workers read and write the build at its URL themselves: the shard jobs
(pipeline/remote_jobs.py) and the build-wide steps, each in a working copy of the worker's own
(pipeline/remote_steps.py). The flow's copy then holds only metadata: the done records, the
summaries and the manifest it writes, and the report's pages it shows.

The copy is the build: a file changes there only by a build's atomic writes, so it is always as
consistent as a local build directory. A remote file is fetched only when its listing entry
changed since this copy last synced it (another machine built there) or the copy lost it. Done
records and stage summaries are sent after the outputs they vouch for, so a push cut short never
leaves the remote claiming an output it lacks. `.remote-sync.json` in the copy holds, per file,
the remote entry's hash and the local size, mtime and sha256 last synced, so neither side is
re-read whole, and the URL (`url_of`). Hidden files (the lock, temporaries, that record) and `input/` folders (caches of
the input) stay local. A plain path or a `file://` URL is the build directory itself; there both
calls do nothing. Credentials and endpoints come from the environment (`AWS_ACCESS_KEY_ID`,
`FSSPEC_S3_ENDPOINT_URL`, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from pipeline import storage
from pipeline.errors import BuildError
from pipeline.shards import fingerprint, write_json

SYNC_RECORD = ".remote-sync.json"
# Folders that cache the input, not build outputs: a build's `input/`, and a scheduled build
# root's `input-cache/` and its builds' `build-NNNN/input/`.
LOCAL_ONLY = ("input", "input-cache")
RECORDS = ("_done.json", "_stage.json", "manifest.json")  # besides every file in a `_done/` folder


def cache_root() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corpus"
    return Path(os.environ.get("CORPUS_CACHE_DIR") or default)


def working_dir(out: str | Path) -> Path:
    """Where the build at `out` is written: `out` itself when local, else its working copy."""
    if not storage.is_url(out):
        return Path(out)
    url = str(out).rstrip("/")
    fs, root = storage.open_url(url)
    if storage.is_local(fs):
        return Path(root)
    name = root.rstrip("/").rsplit("/", 1)[-1] or "build"
    return cache_root() / "builds" / f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def published(out: str | Path, local: Path, rel: str) -> str:
    """Where a build file is for the user: at the URL when the build is remote, else on disk."""
    return f"{str(out).rstrip('/')}/{rel}" if is_remote(out) else str(local / rel)


def is_remote(out: str | Path) -> bool:
    """A URL of a store other than the local disk (`file://` is a local path)."""
    return storage.is_url(out) and not storage.is_local(storage.open_url(str(out))[0])


def pull(out: str | Path, local: Path, only: Callable[[str], bool] | None = None) -> int:
    """Fetch the remote files this copy has not seen; returns how many. `only`: just the files it
    accepts, by path in the build (`is_record`: those that say what is done, for a build whose
    workers read the outputs at the URL themselves)."""
    if not is_remote(out):
        return 0
    fs, root = storage.open_url(str(out).rstrip("/"))
    record = _read_record(local)
    with storage.store_errors(out, "read the build there"):
        listing = _listing(fs, root)
        wanted = [
            rel
            for rel, entry in listing.items()
            if (rel not in record or record[rel]["remote"] != entry or not (local / rel).exists())
            and (only is None or only(rel))
        ]
        if wanted:
            # A fetch cut short is redone by the next pull: the record is written after it.
            fs.get([f"{root}/{rel}" for rel in wanted], [str(local / rel) for rel in wanted])
    for rel in wanted:
        record[rel] = _local_entry(local / rel) | {"remote": listing[rel]}
    _write_record(local, record, out)
    return len(wanted)


def push(out: str | Path, local: Path) -> int:
    """Send the local files whose bytes changed since the last sync; returns how many."""
    if not is_remote(out):
        return 0
    fs, root = storage.open_url(str(out).rstrip("/"))
    record = _read_record(local)
    changed = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = path.relative_to(local).as_posix()
        if not _synced(rel) or (rel in record and _unchanged(path, record[rel])):
            continue
        entry = _local_entry(path)
        if rel in record and record[rel]["sha256"] == entry["sha256"]:  # rewritten with the same bytes
            record[rel] |= entry
        else:
            changed[rel] = entry
    if changed:
        outputs = [rel for rel in changed if not is_record(rel)]
        records = [rel for rel in changed if is_record(rel)]
        with storage.store_errors(out, "write the build there", BuildError):
            for batch in (outputs, records):
                if batch:
                    fs.put([str(local / rel) for rel in batch], [f"{root}/{rel}" for rel in batch])
            listing = _listing(fs, root)
        for rel, entry in changed.items():
            record[rel] = entry | {"remote": listing[rel]}
    _write_record(local, record, out)
    return len(changed)


def _synced(rel: str) -> bool:
    parts = rel.split("/")
    return not any(part in LOCAL_ONLY for part in parts[:-1]) and not any(part.startswith(".") for part in parts)


def is_record(rel: str) -> bool:
    """A file that says the outputs beside it are complete (a later run skips on its word)."""
    parts = rel.split("/")
    return parts[-1] in RECORDS or "_done" in parts[:-1]


def _listing(fs, root: str) -> dict[str, str]:
    """Relative path -> hash of its listing entry (S3: key, size, ETag, LastModified) for every
    file under `root` (none: a new build)."""
    fs.invalidate_cache(root)
    prefix = root.rstrip("/") + "/"
    return {
        path.removeprefix(prefix): hashlib.sha256(str(sorted(info.items())).encode()).hexdigest()
        for path, info in fs.find(root, detail=True).items()
        if info.get("type") == "file" and _synced(path.removeprefix(prefix))
    }


def _local_entry(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": fingerprint(path)}


def _unchanged(path: Path, entry: dict) -> bool:
    """Not written since the last sync: every write (an atomic rename) gives a new mtime."""
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns) == (entry["size"], entry["mtime_ns"])


def _read_record(local: Path) -> dict[str, dict]:
    try:
        return json.loads((local / SYNC_RECORD).read_text())["files"]
    except (OSError, ValueError, KeyError):  # none yet: every file is compared afresh
        return {}


def _write_record(local: Path, files: dict[str, dict], out: str | Path) -> None:
    write_json({"files": dict(sorted(files.items())), "url": str(out).rstrip("/")}, local / SYNC_RECORD)


def url_of(path: Path) -> str | None:
    """The URL of a folder of a working copy (a scheduled build's `build-NNNN` in the copy of its
    root), or None for a folder of no copy."""
    for folder in (path, *path.parents):
        try:
            url = json.loads((folder / SYNC_RECORD).read_text())["url"]
        except (OSError, ValueError, KeyError):
            continue
        return "/".join([url, *path.relative_to(folder).parts])
    return None
