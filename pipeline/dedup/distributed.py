"""Dedup's build-wide step as independent tasks, so that no process holds the whole corpus.

`find_duplicates` (methods.py) clusters in one process: ~1,350 bytes per document
(bench/results/dedup_scale.md), so one machine stops in the hundreds of millions. Here the same
decisions come from tasks that each hold at most `dedup.cluster_partition_rows` rows, handed to a
map-like executor (`builtins.map`, a process pool's `map`, a Dask client's): the build runs them on
its Dask cluster or in a local pool. Tasks talk through Parquet files under a work folder; each
writes its outputs atomically and skips itself when they are there, so a task lost with its worker
is simply run again and a rerun of the step resumes where the last one stopped.

The work folder, the signature files and the decisions are local paths or URLs (task_files.py):
a build at a URL whose tasks run on the Dask cluster has every worker read and write them there.

Documents are numbered g = 0..n-1 in the order of the signature files (shard after shard); every
partition below is a range of g (a "part") or of a hash, never a lookup table of n entries.

1. `scatter`, per shard: the exact keys and every LSH band key (band, key, g) go to the key
   partition of their band and hash range; exact rows carry the representative order's fields.
2. `link`, per key partition: an exact key's documents link to the first of them in the
   representative order (their exact representative, kept for the reasons); the documents sharing
   a band key become verified candidate pairs (lsh.py's `Runs`, the same stars and revisits), each
   component of the partition's verified pairs a star around its lowest g. The MinHash values it
   compares are those of its documents in a run of two or more: `request` asks them of their
   signature files, and `serve` reads each file's values once and sends each partition its own.
3. Connected components of all partitions' links (`large_star` / `small_star`, Kiveris et al.,
   "Connected Components in MapReduce and Beyond", SoCC 2014), alternated in rounds over parts
   until the links stop changing: then each component is a star around its lowest g.
4. `representatives`, per part: a component's representative is its first member in the
   representative order (clusters.py), its size the members' count.
5. `decide`, per shard: the shard's decisions, in the columns of `find_duplicates`; then the
   boilerplate lines, counted per hash range over the kept documents (`count_lines`).

Why the decisions are the local ones: the local near pass verifies the candidate pairs among the
exact representatives; an exact copy has its representative's signature, so pairing every signed
document instead adds only pairs inside exact clusters, and the components of (exact links +
verified candidate pairs) are the same. `Runs.clusters` already yields, per partition, the
components of verifying all its candidate pairs; the union over partitions is that of all pairs.
The representative is the first in the same order, and a removed document's reason is the last
pass that changed its representative: near when the component's representative is not its exact
one. tests/dedup/test_distributed.py compares the two on 100k generated documents.

Not here: containment (a longer document's cluster swallowing a shorter one's) holds every
representative's MinHash in one process, and the index of earlier builds is one process's join;
`pipeline.dedup.stage.cluster` runs `find_duplicates` when either is in effect (docs/dedup.md).
"""

from __future__ import annotations

import math
import resource
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import DedupConfig
from pipeline.dedup import task_files
from pipeline.dedup.clusters import DTYPE, fixed_width, similar_pairs
from pipeline.dedup.exact import KEY_BYTES
from pipeline.dedup.lines import LINE_HASH, common_hashes, listed
from pipeline.dedup.lsh import Runs
from pipeline.dedup.methods import METHODS, REASONS
from pipeline.dedup.minhash import _mix64, band_columns
from pipeline.errors import BuildError

Map = Callable[[Callable[[Any], Any], list], Iterable[Any]]
EXACT_REASON, NEAR_REASON = (method.reason for method in METHODS[:2])
MAX_ROUNDS = 64  # large/small-star rounds; components converge in O(log n) pairs of rounds
EDGE = pa.schema([("u", pa.int64()), ("v", pa.int64())])


@dataclass(frozen=True)
class Plan:
    """What every task needs: the signature files, where g starts in each, the partitions."""

    files: tuple[str, ...]
    offsets: tuple[int, ...]  # (len(files) + 1,): first g of each file, then n
    work: str
    cfg: DedupConfig
    priority: tuple[str, ...]
    ranges: int  # hash ranges per key slot (the exact keys, each band)
    parts: int  # ranges of g

    @property
    def n(self) -> int:
        return self.offsets[-1]

    @property
    def slots(self) -> list[str]:
        """The key slots: "exact", then the band columns."""
        return (["exact"] if self.cfg.exact else []) + (
            band_columns(self.cfg.minhash) if self.cfg.minhash.enabled else []
        )

    def part(self, g: np.ndarray) -> np.ndarray:
        return (g * self.parts // max(self.n, 1)).astype(np.int64)

    def path(self, *names: str) -> str:
        return "/".join([self.work.rstrip("/"), *names])


def plan(files: list[Path] | list[str], cfg: DedupConfig, priority: Iterable[str], work: Path | str) -> Plan:
    """The partitions for these signature files (paths or URLs; `work`, the tasks' folder, too):
    each key partition and each part about `cluster_partition_rows` rows (one band's keys of that
    many documents)."""
    offsets = np.cumsum([0, *(task_files.num_rows(str(f)) for f in files)])
    n = int(offsets[-1])
    count = max(1, math.ceil(n / cfg.cluster_partition_rows))
    return Plan(tuple(map(str, files)), tuple(map(int, offsets)), str(work), cfg, tuple(priority), count, count)


def find_duplicates_distributed(plan: Plan, out: list[Path] | list[str], run: Map = map) -> dict:
    """The decisions of `find_duplicates` (without containment or an index), one file per
    signature file (`out[i]` for `plan.files[i]`, rows in its order); returns what ran: the tasks,
    rounds and the largest peak RSS of a task's process."""
    shards = list(range(len(plan.files)))
    key_partitions = list(range(len(plan.slots) * plan.ranges))
    parts = list(range(plan.parts))
    peaks = list(run(scatter, [(plan, i) for i in shards]))
    bands = [p for p in key_partitions if plan.slots[p // plan.ranges] != "exact"]
    peaks += run(request, [(plan, p) for p in bands])
    peaks += run(serve, [(plan, i) for i in shards])
    peaks += run(link, [(plan, p) for p in key_partitions])
    rounds = 0
    previous = None
    while True:
        sums = list(run(large_star, [(plan, rounds, q) for q in parts]))
        peaks += [peak for _, peak in sums]
        checksum = tuple(np.sum([s for s, _ in sums], axis=0, dtype=np.uint64).tolist())
        if checksum == previous:
            break
        if rounds >= MAX_ROUNDS:
            raise BuildError(
                f"dedup_clusters: the components did not converge in {MAX_ROUNDS} rounds; please report it"
            )
        previous = checksum
        peaks += run(small_star, [(plan, rounds, q) for q in parts])
        rounds += 1
    peaks += run(members, [(plan, rounds, q) for q in parts])
    peaks += run(representatives, [(plan, rounds, q) for q in parts])
    peaks += run(decide, [(plan, i, str(out[i])) for i in shards])
    if plan.cfg.lines.enabled:
        peaks += run(count_lines, [(plan, q) for q in parts])
        peaks += run(list_lines, [(plan, i, str(out[i])) for i in shards])
    return {"tasks": len(peaks), "rounds": rounds + 1, "peak_task_rss_bytes": max(peaks)}


def peak_rss() -> int:
    """This process's peak RSS in bytes so far (a Dask worker's or a pool process's): Linux's
    VmHWM, not ru_maxrss, which a process started by fork + exec inherits from its parent."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _write(tables: dict[int, pa.Table], folder: str, name: str) -> None:
    """One file per destination: folder/<dest>/<name>.parquet, written atomically."""
    for dest, table in tables.items():
        task_files.write_table(table, f"{folder}/{dest:05d}/{name}.parquet")


def _read(folder: str, schema: pa.Schema) -> pa.Table:
    found = task_files.listed(folder, "*.parquet")
    return pa.concat_tables([task_files.read_table(f) for f in found]) if found else schema.empty_table()


def _split(table: pa.Table, dest: np.ndarray) -> dict[int, pa.Table]:
    """The rows of table by destination, each destination's rows in their order."""
    order = np.argsort(dest, kind="stable")
    bounds = np.flatnonzero(np.diff(dest[order])) + 1
    return {
        int(dest[order[s]]): table.take(order[s:e])
        for s, e in zip(np.r_[0, bounds], np.r_[bounds, len(order)])
        if e > s
    }


def _rank_fields(table: pa.Table, priority: tuple[str, ...]) -> dict[str, pa.Array]:
    """The representative order's fields (clusters.py): source rank, minus the length, then id."""
    ranked = pc.index_in(table.column("source"), value_set=pa.array(list(priority), pa.string()))
    return {
        "rank": pc.fill_null(ranked, len(priority)).cast(pa.int32()),
        "minus_length": pc.negate(table.column("length")),
        "id": table.column("id"),
    }


ORDER = [("rank", "ascending"), ("minus_length", "ascending"), ("id", "ascending")]


def scatter(args: tuple[Plan, int]) -> int:
    """Step 1 for one signature file: its keys to their key partitions."""
    plan, i = args
    marker = plan.path("scatter", f"{i:06d}.done")
    if task_files.exists(marker):
        return peak_rss()
    cfg = plan.cfg
    table = task_files.read_table(plan.files[i], ["id", "length", "source", "shingles", *_key_columns(cfg)])
    g = pa.array(np.arange(plan.offsets[i], plan.offsets[i + 1], dtype=np.int64))
    out: dict[int, pa.Table] = {}
    for s, slot in enumerate(plan.slots):
        if slot == "exact":
            keys = fixed_width(table.column("exact_key").combine_chunks().cast(pa.binary(KEY_BYTES)), KEY_BYTES)
            halves = keys.view("<u8")  # (n, 2): the whole 128-bit key decides equality
            rows = pa.table({"key": halves[:, 0], "key2": halves[:, 1], "g": g, **_rank_fields(table, plan.priority)})
        else:
            signed = pc.greater(table.column("shingles"), 0)
            rows = pa.table({"key": table.column(slot), "g": g}).filter(signed)
        ranges = _hash_range(rows.column("key").to_numpy(), plan.ranges)
        out |= {s * plan.ranges + r: part for r, part in _split(rows, ranges).items()}
    _write(out, plan.path("keys"), f"{i:06d}")
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def _key_columns(cfg: DedupConfig) -> list[str]:
    return (["exact_key"] if cfg.exact else []) + (band_columns(cfg.minhash) if cfg.minhash.enabled else [])


def _hash_range(keys: np.ndarray, ranges: int) -> np.ndarray:
    """Which of `ranges` equal ranges of the 64-bit hash each key falls in (keys are mixed
    hashes, so the ranges hold about equal shares)."""
    return ((keys >> np.uint64(40)).astype(np.int64) * ranges >> 24).astype(np.int64)


def request(args: tuple[Plan, int]) -> int:
    """Step 2a for one band partition: its documents in a run of two or more (the only ones
    whose MinHash values `link` compares), asked of their signature files."""
    plan, p = args
    marker = plan.path("request", f"k{p:06d}.done")
    if task_files.exists(marker):
        return peak_rss()
    rows = _read(plan.path("keys", f"{p:05d}"), pa.schema([]))
    if rows.num_rows:
        _, run, count = np.unique(rows.column("key").to_numpy(), return_inverse=True, return_counts=True)
        wanted = np.unique(rows.column("g").to_numpy()[count[run] >= 2])
        files = np.searchsorted(plan.offsets, wanted, side="right") - 1
        _write(_split(pa.table({"g": wanted}), files), plan.path("request"), f"k{p:06d}")
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def serve(args: tuple[Plan, int]) -> int:
    """Step 2b for signature file i: the MinHash values the band partitions asked of it, read
    once and sent to each (so no partition reads every file)."""
    plan, i = args
    marker = plan.path("serve", f"{i:06d}.done")
    if task_files.exists(marker):
        return peak_rss()
    asked = task_files.listed(plan.path("request", f"{i:05d}"), "k*.parquet")
    if asked:
        blobs = task_files.read_table(plan.files[i], ["minhash"]).column(0).combine_chunks()
        for place in asked:
            g = task_files.read_table(place).column("g")
            rows = blobs.take(pc.subtract(g, plan.offsets[i]))
            partition = place.rsplit("/", 1)[-1].removesuffix(".parquet")
            task_files.write_table(
                pa.table({"g": g, "minhash": rows}), plan.path("values", partition, f"{i:06d}.parquet")
            )
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def link(args: tuple[Plan, int]) -> int:
    """Step 2 for one key partition: exact representatives and the partition's components as
    links (u, v), each sent both ways to the parts of u and v for the first round."""
    plan, p = args
    name = f"k{p:06d}"
    marker = plan.path("link", f"{name}.done")
    if task_files.exists(marker):
        return peak_rss()
    slot = plan.slots[p // plan.ranges]
    folder = plan.path("keys", f"{p:05d}")
    if slot == "exact":
        rows = _read(folder, pa.schema([]))
        if rows.num_rows:
            rows = rows.sort_by([("key", "ascending"), ("key2", "ascending"), *ORDER])
            k1, k2 = rows.column("key").to_numpy(), rows.column("key2").to_numpy()
            first = np.flatnonzero(np.r_[True, (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1])])
            g = rows.column("g").to_numpy()
            rep = g[first][np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(g)]))]
            copies = rep != g
            u, v = g[copies], rep[copies]
            exact = pa.table({"g": u, "rep": v})
            _write(_split(exact, plan.part(u)), plan.path("exact"), name)
        else:
            u = v = np.empty(0, dtype=np.int64)
    else:
        u, v = _band_links(plan, _read(folder, pa.schema([])), _read(plan.path("values", name), pa.schema([])))
    _send_both_ways(plan, u, v, plan.path("round", "000", "large"), name)
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def _band_links(plan: Plan, rows: pa.Table, values: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """The components of one band partition's verified candidate pairs, as links to their lowest
    g; values: (g, minhash) of the partition's documents in runs, sorted by g (`serve`)."""
    if not rows.num_rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    keys, g = rows.column("key").to_numpy(), rows.column("g").to_numpy()
    docs, local = np.unique(g, return_inverse=True)  # partition-local indices, ordered as g
    runs = Runs(len(docs))
    runs.add(keys, local)
    served = values.column("g").to_numpy() if values.num_rows else np.empty(0, dtype=np.int64)
    width = plan.cfg.minhash.num_perm * DTYPE.itemsize
    blobs = values.column("minhash").combine_chunks() if values.num_rows else pa.array([], pa.binary(width))
    hashvalues = fixed_width(blobs.cast(pa.binary(width)), width).view(DTYPE)
    at = np.searchsorted(served, docs)  # every document in a pair is in a run, so served

    def verify(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return similar_pairs(hashvalues, at[a], at[b], plan.cfg.minhash.threshold)

    label = runs.clusters(verify, np.empty((0, 2), dtype=np.int64))
    lowest = np.full(label.max() + 1, len(docs))
    np.minimum.at(lowest, label, np.arange(len(docs)))
    head = lowest[label]
    linked = head != np.arange(len(docs))
    return docs[linked], docs[head[linked]]


def _send_both_ways(plan: Plan, u: np.ndarray, v: np.ndarray, folder: str, name: str) -> None:
    both = pa.table({"u": np.r_[u, v], "v": np.r_[v, u]}, schema=EDGE)
    _write(_split(both, plan.part(both.column("u").to_numpy())), folder, name)


def _edges(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct links (u, v) in folder, sorted by u then v."""
    table = _read(folder, EDGE)
    codes = np.unique(np.stack([table.column("u").to_numpy(), table.column("v").to_numpy()], axis=1), axis=0)
    return codes[:, 0], codes[:, 1]


def _group_min(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each link's group start index, min(u, its neighbours) per link) for links sorted by u."""
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    low = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    return starts, np.repeat(low, np.diff(np.r_[starts, len(u)]))


def large_star(args: tuple[Plan, int, int]) -> tuple[list[int], int]:
    """A round's large star for part q: each node's larger neighbours link to its lowest
    neighbour (or itself). Returns a checksum of the part's links (both ways), equal in two
    rounds when nothing changed, and the peak RSS; writes the part's labels (lowest neighbour)."""
    plan, r, q = args
    u, v = _edges(plan.path("round", f"{r:03d}", "large", f"{q:05d}"))
    checksum = [len(u), int(np.sum(_mix(u * np.int64(plan.n) + v), dtype=np.uint64))] if len(u) else [0, 0]
    marker = plan.path("round", f"{r:03d}", "small", f"q{q:05d}.done")
    if not task_files.exists(marker):
        _, low = _group_min(u, v) if len(u) else (None, u)
        larger = v > u
        out = pa.table({"u": v[larger], "v": low[larger]}, schema=EDGE)
        _write(_split(out, plan.part(v[larger])), plan.path("round", f"{r:03d}", "small"), f"q{q:05d}")
        starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if len(u) else u
        labels = pa.table({"u": u[starts], "v": low[starts]}, schema=EDGE)
        task_files.write_table(labels, plan.path("round", f"{r:03d}", "labels", f"{q:05d}.parquet"))
        task_files.write_table(pa.table({"done": [True]}), marker)
    return checksum, peak_rss()


def small_star(args: tuple[Plan, int, int]) -> int:
    """A round's small star for part q: each node and its smaller neighbours link to the lowest
    of them; the links go both ways to the next round's large star."""
    plan, r, q = args
    name = f"q{q:05d}"
    marker = plan.path("round", f"{r + 1:03d}", "large", f"{name}.done")
    if task_files.exists(marker):
        return peak_rss()
    u, v = _edges(plan.path("round", f"{r:03d}", "small", f"{q:05d}"))  # v < u: a large star's links
    if len(u):
        starts, low = _group_min(u, v)
        nodes = np.r_[v, u[starts]]
        heads = np.r_[low, low[starts]]
        keep = nodes != heads
        u, v = nodes[keep], heads[keep]
    _send_both_ways(plan, u, v, plan.path("round", f"{r + 1:03d}", "large"), name)
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def _mix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix64(x.astype(np.uint64))


def representatives(args: tuple[Plan, int, int]) -> int:
    """Step 4 for the components whose lowest g is in part q: the first member in the
    representative order represents them; every member learns its representative and the size."""
    plan, r, q = args
    marker = plan.path("reps", f"q{q:05d}.done")
    if task_files.exists(marker):
        return peak_rss()
    # Members, sent to their component's part by `members` (below) for every part first.
    members = _read(plan.path("members", f"{q:05d}"), pa.schema([]))
    if members.num_rows:
        members = members.sort_by([("label", "ascending"), *ORDER])
        label = members.column("label").to_numpy()
        first = np.flatnonzero(np.r_[True, label[1:] != label[:-1]])
        sizes = np.diff(np.r_[first, len(label)])
        which = np.repeat(first, sizes)
        g = members.column("g").to_numpy()
        out = pa.table(
            {
                "g": g,
                "rep": g[which],
                "rep_id": members.column("id").take(pa.array(which)),
                "size": np.repeat(sizes, sizes).astype(np.int32),
            }
        )
        _write(_split(out, plan.part(g)), plan.path("reps"), f"q{q:05d}")
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def members(args: tuple[Plan, int, int]) -> int:
    """Step 4's first half for part q: its documents in a component, with their order's fields,
    sent to the part of the component's label (its lowest g)."""
    plan, r, q = args
    marker = plan.path("members", f"q{q:05d}.done")
    if task_files.exists(marker):
        return peak_rss()
    labels = task_files.read_table(plan.path("round", f"{r:03d}", "labels", f"{q:05d}.parquet"))
    g = labels.column("u").to_numpy()
    if len(g):
        fields = _documents(plan, g, ["id", "length", "source"])
        table = pa.table({"label": labels.column("v"), "g": labels.column("u"), **_rank_fields(fields, plan.priority)})
        _write(_split(table, plan.part(labels.column("v").to_numpy())), plan.path("members"), f"q{q:05d}")
    task_files.write_table(pa.table({"done": [True]}), marker)
    return peak_rss()


def _documents(plan: Plan, g: np.ndarray, columns: list[str]) -> pa.Table:
    """Columns of the signature files for documents g (sorted), in that order."""
    bounds = np.searchsorted(g, plan.offsets)
    tables = [
        task_files.read_table(plan.files[i], columns).take(pa.array(g[start:end] - plan.offsets[i]))
        for i, (start, end) in enumerate(zip(bounds[:-1], bounds[1:]))
        if start < end
    ]
    return pa.concat_tables(tables)


def decide(args: tuple[Plan, int, str]) -> int:
    """Step 5 for signature file i: its documents' decisions, in its row order, as
    `find_duplicates` gives them (boilerplate lines empty until `list_lines`)."""
    plan, i, out = args
    if task_files.exists(out) or task_files.exists(_undecided(out)):
        return peak_rss()
    start, end = plan.offsets[i], plan.offsets[i + 1]
    g = np.arange(start, end, dtype=np.int64)
    ids = task_files.read_table(plan.files[i], ["id"]).column(0).combine_chunks()
    rep, exact_rep, size = g.copy(), g.copy(), np.ones(len(g), dtype=np.int32)
    rep_id = ids
    for q in np.unique(plan.part(g)):
        reps = _read(plan.path("reps", f"{q:05d}"), pa.schema([]))
        if reps.num_rows:
            mine = reps.filter(pc.and_(pc.greater_equal(reps.column("g"), start), pc.less(reps.column("g"), end)))
            at = mine.column("g").to_numpy() - start
            rep[at], size[at] = mine.column("rep").to_numpy(), mine.column("size").to_numpy()
            rep_id = pc.replace_with_mask(
                rep_id,
                pa.array(np.isin(np.arange(len(g)), at)),
                mine.column("rep_id").combine_chunks().take(pa.array(np.argsort(at))),
            )
        exact = _read(plan.path("exact", f"{q:05d}"), pa.schema([]))
        if exact.num_rows:
            mine = exact.filter(pc.and_(pc.greater_equal(exact.column("g"), start), pc.less(exact.column("g"), end)))
            exact_rep[mine.column("g").to_numpy() - start] = mine.column("rep").to_numpy()
    removed = rep != g
    code = np.where(removed, np.where(rep != exact_rep, REASONS.index(NEAR_REASON), REASONS.index(EXACT_REASON)), -1)
    table = pa.table(
        {
            "id": ids,
            "dup_cluster": rep_id,
            "dup_cluster_size": pa.array(size, pa.int32()),
            "duplicate_of": pc.if_else(pa.array(removed), rep_id, pa.nulls(len(g), pa.string())),
            "reason": pa.array(REASONS, pa.string()).take(pa.array(code, mask=code < 0)),
            "boilerplate_lines": pa.array([[]] * len(g), LINE_HASH),
        }
    )
    if not plan.cfg.lines.enabled:
        task_files.write_table(table, out)
        return peak_rss()
    # The kept documents' line hashes to `count_lines`, by hash range; `list_lines` then
    # finishes the decisions file.
    hashes = task_files.read_table(plan.files[i], ["line_hashes"]).column(0).combine_chunks()
    counted = pc.list_flatten(hashes.filter(pa.array(~removed)))
    _write(
        _split(pa.table({"hash": counted}), _hash_range(counted.to_numpy(), plan.parts)),
        plan.path("lines_in"),
        f"{i:06d}",
    )
    task_files.write_table(table, _undecided(out))
    return peak_rss()


def count_lines(args: tuple[Plan, int]) -> int:
    """Boilerplate, for the line hashes in hash range q: those in more than
    `lines.max_documents` kept documents."""
    plan, q = args
    path = plan.path("lines", f"{q:05d}.parquet")
    if task_files.exists(path):
        return peak_rss()
    counted = _read(plan.path("lines_in", f"{q:05d}"), pa.schema([("hash", pa.uint64())])).column("hash")
    task_files.write_table(
        pa.table({"hash": common_hashes(counted.combine_chunks(), plan.cfg.lines.max_documents)}), path
    )
    return peak_rss()


def list_lines(args: tuple[Plan, int, str]) -> int:
    """Each document of signature file i with its boilerplate hashes: the decisions made final."""
    plan, i, out = args
    if task_files.exists(out):
        return peak_rss()
    common = _read(plan.path("lines"), pa.schema([("hash", pa.uint64())])).column("hash").combine_chunks()
    table = task_files.read_table(_undecided(out))
    hashes = task_files.read_table(plan.files[i], ["line_hashes"]).column(0).combine_chunks()
    table = table.set_column(table.column_names.index("boilerplate_lines"), "boilerplate_lines", listed(hashes, common))
    task_files.write_table(table, out)
    task_files.remove(_undecided(out))
    return peak_rss()


def _undecided(out: str) -> str:
    """Where `decide` leaves a decisions file for `list_lines` to finish."""
    return out.removesuffix(".parquet") + ".undecided"
