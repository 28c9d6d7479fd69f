"""Set-level dedup across builds: an index of the documents earlier builds kept.

A scheduled build must not publish again what an earlier build published. The index is a folder
of parts, one per build, each holding the signature rows (id, length, exact key, shingle count,
MinHash values, LSH band keys; no text) of the documents that build kept, one file per shard:

    INDEX/000001-<build>/part-00000.parquet ... _part.json
    INDEX/000002-<build>/...

A build reads every part numbered before its own (all of them while it has none), dedups
against them in its global step (`find_duplicates(..., earlier=...)`: a document in the cluster
of an earlier one is removed as `duplicate_of_earlier_build`), then writes its own part under the
next number. Parts of other builds are never rewritten, so the index only grows. A rerun of a
build reads the same parts as its first run (those numbered before its own), so its decisions do
not change. Builds sharing an index are meant to run one after another, as scheduled builds do.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import remote
from pipeline.config import MinHashConfig
from pipeline.errors import InputError
from pipeline.shards import read_shard, write_json, write_shard

MANIFEST = "_part.json"


def earlier_parts(index_dir: Path, build_dir: Path, cfg: MinHashConfig) -> list[Path]:
    """Signature files of the parts before this build's own, in part order.

    Refuses parts made with other MinHash settings: their values and band keys would not compare.
    """
    parts = _parts(index_dir)
    own = _tag(build_dir)
    own_number = next((number for number, tag, _ in parts if tag == own), None)
    ours = _settings(cfg)
    files = []
    for number, tag, path in parts:
        if tag == own or (own_number is not None and number >= own_number):
            continue
        theirs = json.loads((path / MANIFEST).read_text())["minhash"]
        if theirs != ours:
            key = next(k for k in ours if theirs.get(k) != ours[k])
            raise InputError(
                f"{path}: this index part was made with dedup.minhash.{key}={theirs.get(key)!r}, "
                f"this build uses {ours[key]!r}. Use the same settings or a new dedup.index folder."
            )
        files += sorted(path.glob("part-*.parquet"))
    return files


def append(
    index_dir: Path, build_dir: Path, signature_files: list[Path], decisions: pa.Table, cfg: MinHashConfig
) -> Path:
    """Write this build's part: the signature rows of the documents it kept. A rerun replaces
    only its own part, under its own number."""
    parts = _parts(index_dir)
    own = _tag(build_dir)
    number = next((n for n, tag, _ in parts if tag == own), max((n for n, _, _ in parts), default=0) + 1)
    part = index_dir / f"{number:06d}-{own}"
    tmp = index_dir / f".{part.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    kept = decisions.filter(pc.is_null(decisions.column("reason"))).column("id")
    documents = 0
    for path in signature_files:
        # What the methods compare, not the lines: line dedup counts this build's documents only.
        table = read_shard(path).drop_columns(["line_hashes"])
        table = table.filter(pc.is_in(table.column("id"), value_set=kept))
        write_shard(table, tmp / path.name)
        documents += table.num_rows
    write_json({"build": str(build_dir.resolve()), "documents": documents, "minhash": _settings(cfg)}, tmp / MANIFEST)
    shutil.rmtree(part, ignore_errors=True)
    tmp.rename(part)
    return part


def state(parts: list[Path]) -> str:
    """What the earlier parts are, for the decisions' fingerprint: parts are never rewritten, so
    their names and manifests identify them."""
    dirs = sorted({path.parent for path in parts})
    return hashlib.sha256("\n".join(f"{d.name} {(d / MANIFEST).read_text()}" for d in dirs).encode()).hexdigest()


def _parts(index_dir: Path) -> list[tuple[int, str, Path]]:
    """(number, build tag, folder) of every finished part, in order."""
    found = []
    for path in sorted(index_dir.glob("[0-9]*-*")):
        match = re.fullmatch(r"(\d+)-(.+)", path.name)
        if match and (path / MANIFEST).exists():
            found.append((int(match.group(1)), match.group(2), path))
    return found


def _tag(build_dir: Path) -> str:
    """A build's name in the index: its folder name and a hash of where it is: its URL for the
    working copy of a remote build (the same in the flow's copy and in any Dask worker's, so a
    step rerun on another machine replaces its own part), else its absolute path."""
    where = remote.url_of(build_dir) or str(build_dir.resolve())
    name = re.sub(r"[^A-Za-z0-9_.]+", "_", where.rstrip("/").rsplit("/", 1)[-1])[:40]
    return f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:12]}"


def _settings(cfg: MinHashConfig) -> dict:
    """The MinHash settings that decide a signature's values and band keys."""
    return cfg.model_dump(mode="json", exclude={"enabled"})
