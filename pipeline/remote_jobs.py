"""Shard jobs that read and write the build at its URL themselves (`--out s3://...` with a Dask
cluster): no shared filesystem, no path that must be the same on every machine.

The flow keeps a local working copy of a remote build (pipeline/remote.py), and its jobs name
files by the copy's paths. A job sent to a worker carries the build's URL and the copy's root
instead of relying on them: the worker maps every path the job names (its input shard, the
build steps' artifacts, its stage folder) to the same path under the URL, fetches the inputs
into a scratch folder of its own, runs the job there (pipeline/jobs.py), uploads every file the
job wrote and, last, its done record. So the flow sends and receives metadata only: jobs, and
records with the sha256 of each output (the next stage's fingerprints need them).

What this relies on of an object store: a PUT is atomic (a reader sees the old object or the
whole new one, never part of it: S3, GCS and MinIO, multipart uploads included, which appear
only once completed) and a GET after a finished PUT sees it (S3's strong read-after-write
consistency). So the write-then-rename of a local build becomes write-then-commit: the outputs'
PUTs complete before the done record's PUT starts, and a job killed in between leaves outputs
without a record, which a rerun redoes, as it does locally. Nothing is ever deleted.

The input the flow checked and planned lives on its machine (its own files, or its cache of a
remote input), so each input shard is published once under `input/published/<sha256>/` at the
URL, where the workers read it; the same bytes are never sent twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow.parquet as pq

from pipeline import remote, storage
from pipeline.errors import BuildError
from pipeline.jobs import ShardJob, execute_job
from pipeline.shards import RawPart, fingerprint, write_json
from pipeline.steps import align_schemas

PUBLISHED = "input/published"


@dataclass(frozen=True)
class UrlJob:
    """A shard job as a worker runs it: the job, the build's URL, the flow's working copy (the
    root of the job's paths) and where its input shard is at the URL."""

    job: ShardJob
    url: str
    root: str
    input_key: str  # the input shard's path under the URL
    raw_key: str | None = None  # a raw part's archive (or HTML table) under the URL


class BuildStore:
    """The flow's side: turns its jobs into UrlJobs (and names at the URL the files a build step
    reads: pipeline/remote_steps.py), and remembers the hash of each file the workers wrote (by
    its path in the working copy) for the fingerprints of later jobs."""

    def __init__(self, url: str, root: Path):
        self.url = str(url).rstrip("/")
        self.root = root
        self.hashes: dict[str, str] = {}
        self.fs, self.base = storage.open_url(self.url)
        self._published: set[str] = set()
        self._keys: dict[tuple, str] = {}  # a published file's key by its (path, size, mtime)

    def job(self, job: ShardJob) -> UrlJob:
        # A raw part is a descriptor of bytes of a file on this machine: that file goes too.
        raw = self._publish(Path(RawPart.read(job.input_path).file)) if job.step.reads == "raw" else None
        return UrlJob(job, self.url, str(self.root), self.key_of(job.input_path), raw)

    def received(self, job: ShardJob, record: dict) -> dict:
        """The record a worker returned, less the hashes it carried (kept here: the manifest and
        the summaries hold the same record as a local build's)."""
        folder = _key(self.root, job.out_dir)
        for output, sha in record.pop("sha256", {}).items():
            self.hashes[f"{folder}/{output}"] = sha
        return record

    def hash_of(self, path: Path) -> str:
        """sha256 of a file of the build: from the workers' records, the local file, or (a stage
        that did not run in this build) the file at the URL, read once."""
        key = _key(self.root, path) if path.is_relative_to(self.root) else None
        if key in self.hashes:
            return self.hashes[key]
        if key is None or path.exists():
            return fingerprint(path)
        with storage.store_errors(self.url, "read the build there", BuildError):
            self.hashes[key] = _stream_hash(self.fs, f"{self.base}/{key}")
        return self.hashes[key]

    def fetch(self, *rels: str) -> int:
        """These few files the workers wrote (paths in the build), into the working copy: what the
        flow itself reads of the outputs (the report's pages)."""
        return remote.pull(self.url, self.root, only=set(rels).__contains__)

    def aligned(self, folder: Path, shards: list[str]) -> tuple[str, str, list[str]]:
        """The arguments of align_at_url for a stage folder of the working copy."""
        return self.url, _key(self.root, folder), shards

    def key_of(self, path: Path) -> str:
        """Where a file a job or step reads is at the URL: a stage's output where the workers wrote
        it, else the input shard, published now (once per content)."""
        if path.is_relative_to(self.root):
            key = _key(self.root, path)
            if key.split("/", 1)[0] not in remote.LOCAL_ONLY:
                return key
        return self._publish(path)

    def _publish(self, path: Path) -> str:
        """A file of this machine at the URL, by its content (its name kept: ids are made from it);
        hashed once while it is unchanged (every build step names all the input shards)."""
        stat = path.stat()
        seen = (str(path), stat.st_size, stat.st_mtime_ns)
        if seen not in self._keys:
            self._keys[seen] = f"{PUBLISHED}/{fingerprint(path)}/{path.name}"
        key = self._keys[seen]
        if key not in self._published:
            with storage.store_errors(self.url, "write the build there", BuildError):
                if not self.fs.exists(f"{self.base}/{key}"):
                    self.fs.put_file(str(path), f"{self.base}/{key}")
            self._published.add(key)
        return key


def run_at_url(task: UrlJob) -> dict:
    """Run one job (or skip it) on this machine against the build at its URL; returns its record
    with `sha256` of each output. Safe to call in a Dask worker started anywhere."""
    job, root = task.job, Path(task.root)
    fs, base = storage.open_url(task.url)
    folder = _key(root, job.out_dir)
    store = partial(storage.store_errors, task.url, "reach the build there", BuildError)  # around store calls only
    with store():
        if (record := _finished(fs, base, folder, job)) is not None:
            return record
    with tempfile.TemporaryDirectory(prefix="corpus-job-") as scratch:
        inputs, outputs = Path(scratch) / "in", Path(scratch) / "out" / folder
        local_input = inputs / task.input_key
        artifacts = {name: inputs / _key(root, path) for name, path in job.context.artifacts.items()}
        with store():
            fs.get_file(f"{base}/{task.input_key}", str(_made(local_input)))
            if task.raw_key is not None:
                archive = inputs / task.raw_key
                fs.get_file(f"{base}/{task.raw_key}", str(_made(archive)))
                dataclasses.replace(RawPart.read(local_input), file=str(archive)).write(local_input)
            for path in artifacts.values():
                key = path.relative_to(inputs).as_posix()
                fs.get(f"{base}/{key}", str(_made(path)), recursive=fs.isdir(f"{base}/{key}"))
        here = dataclasses.replace(
            job,
            input_path=local_input,
            context=dataclasses.replace(job.context, artifacts=artifacts, out_dir=outputs),
        )
        record = execute_job(here) | {"input": str(job.input_path)}  # as the flow names it
        hashes = {}
        with store():
            for path in sorted(p for p in outputs.rglob("*") if p.is_file()):
                rel = path.relative_to(outputs).as_posix()
                hashes[rel] = fingerprint(path)
                fs.put_file(str(path), f"{base}/{folder}/{rel}")
            # Last, once every output is committed: its presence means they are complete.
            write_json(record, Path(scratch) / "record.json")
            fs.put_file(str(Path(scratch) / "record.json"), f"{base}/{_key(root, job.record_path)}")
    return record | {"skipped": False, "sha256": {out: hashes[out] for out in record["outputs"] if out in hashes}}


def align_at_url(url: str, folder: str, shards: list[str]) -> dict[str, str]:
    """steps.align_schemas on a stage folder at the URL: reads only the files' footers, and
    rewrites (download, align, upload) only those whose columns differ; returns the new sha256
    of each rewritten file by its path under the URL."""
    fs, base = storage.open_url(url)
    with storage.store_errors(url, "reach the build there", BuildError):
        names, differ = {}, False
        for sub in (folder, f"{folder}/removed"):
            columns = set()
            for shard in shards:
                key = f"{sub}/{shard}.parquet"
                if fs.exists(f"{base}/{key}"):
                    with fs.open(f"{base}/{key}", "rb") as f:
                        names[key] = tuple(pq.read_schema(f).names)
                    columns.add(names[key])
            differ = differ or len(columns) > 1
        if not differ:
            return {}
        with tempfile.TemporaryDirectory(prefix="corpus-align-") as scratch:
            local = Path(scratch)
            for key in names:
                fs.get_file(f"{base}/{key}", str(_made(local / key)))
            before = {key: fingerprint(local / key) for key in names}
            align_schemas(local / folder, shards)
            changed = {key: sha for key in names if (sha := fingerprint(local / key)) != before[key]}
            for key in changed:
                fs.put_file(str(local / key), f"{base}/{key}")
    return changed


def _finished(fs, base: str, folder: str, job: ShardJob) -> dict | None:
    """The done record of an earlier identical run at the URL, if its outputs are all there,
    with the sha256 of each output (read back: the next stage's fingerprints need them)."""
    try:
        record = json.loads(fs.cat_file(f"{base}/{folder}/_done/{job.record_path.name}"))
    except (FileNotFoundError, ValueError):
        return None
    if record.get("fingerprint") != job.fingerprint or "outputs" not in record:
        return None
    paths = [f"{base}/{folder}/{output}" for output in record["outputs"]]
    if not all(fs.exists(path) for path in paths):
        return None
    hashes = {output: _stream_hash(fs, path) for output, path in zip(record["outputs"], paths)}
    return record | {"skipped": True, "sha256": hashes}


def _stream_hash(fs, path: str) -> str:
    with fs.open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _key(root: Path, path: Path) -> str:
    """A path of the working copy as a path under the URL."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        raise BuildError(
            f"{path}: a shard job names a file outside the build ({root}), which a worker without the flow's "
            "disk cannot read. This is a bug in the stage: hand files to shard steps as build-step artifacts."
        ) from None


def _made(path: Path) -> Path:
    """`path`, its folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
