"""The shard plan: which rows of which input files make each shard of a build.

A shard is the unit of per-shard work: one job per shard and stage, `workers` of them at a
time. When shards are the user's files, one large file is one job while the other cores idle,
and thousands of tiny files are thousands of jobs of mostly overhead. The plan cuts a source's
files into shards near one size instead:

- the shard size is the build's text input over `per_worker` shards per worker, kept within
  [`min_mb`, `target_mb`] and rounded down to a power of two, so that a file added or rewritten
  rarely moves it;
- a file about n shard sizes large becomes n shards of contiguous rows, cut at row-group edges
  (a row group larger than half a shard is cut by rows);
- when the build has more files than per_worker × workers, consecutive files under a quarter of
  the shard size are merged, up to the shard size: thousands of tiny files become shards of the
  size a large file is cut to (never under `min_mb`: a job of a few KB is mostly its own
  overhead), while a few small files stay as they are, a job each for the workers;
- any other file is one shard, as before.

Names follow the files, so that a file that changes changes only its own shards: a file whole is
`part-NNNNN` (N its position in the build's input, as when shards were files), its k-th piece
`part-NNNNN-KKK`, merged files the name of the first. Shards never span sources.

A pure function of the files' row groups (rows, bytes) and the config: same input, same plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MB = 1 << 20
TINY = 4  # a file under 1/TINY of the shard size is merged with its neighbours
UNIT = 2  # row groups are cut to at most 1/UNIT of the shard size, for even pieces


@dataclass(frozen=True)
class InputFile:
    """A checked input file as the planner sees it."""

    name: str  # its shard name when it is one shard: part-NNNNN
    path: str
    row_groups: tuple[tuple[int, int], ...]  # (rows, uncompressed bytes) of each, in order

    @property
    def bytes(self) -> int:
        return sum(b for _, b in self.row_groups)

    @property
    def rows(self) -> int:
        return sum(r for r, _ in self.row_groups)


@dataclass(frozen=True)
class Piece:
    """Rows [start, stop) of one file (row numbers in the file)."""

    path: str
    start: int
    stop: int


@dataclass(frozen=True)
class PlannedShard:
    name: str
    pieces: tuple[Piece, ...]
    bytes: int

    @property
    def rows(self) -> int:
        return sum(p.stop - p.start for p in self.pieces)


def shard_size(total_bytes: int, workers: int, target_mb: float, per_worker: int, min_mb: float) -> int:
    """The shard size of a build with `total_bytes` of text input, a power of two in bytes: the
    input over per_worker × workers, within [min_mb, target_mb]. Files are split to it and tiny
    ones merged up to it."""
    wanted = min(total_bytes / max(1, per_worker * workers), target_mb * MB)
    return _power_of_two(max(wanted, min_mb * MB))


def _power_of_two(size: float) -> int:
    return 1 << int(math.log2(max(size, 1)))


def plan(files: list[InputFile], size: int, merge: bool = True) -> list[PlannedShard]:
    """The shards of one source's files, in file order, near `size` bytes each; tiny files are
    merged only with `merge` (the build has more files than the shards its workers want)."""
    shards: list[PlannedShard] = []
    run: list[InputFile] = []  # consecutive tiny files not yet placed

    def flush() -> None:
        if run:
            pieces = tuple(Piece(f.path, 0, f.rows) for f in run)
            shards.append(PlannedShard(run[0].name, pieces, sum(f.bytes for f in run)))
            run.clear()

    for file in files:
        n = max(1, round(file.bytes / size))
        if merge and n == 1 and file.bytes < size / TINY:
            if run and sum(f.bytes for f in run) + file.bytes > size:
                flush()
            run.append(file)
            continue
        flush()
        if n == 1:
            shards.append(PlannedShard(file.name, (Piece(file.path, 0, file.rows),), file.bytes))
        else:
            shards += _split(file, n, size)
    flush()
    return shards


def _split(file: InputFile, n: int, size: int) -> list[PlannedShard]:
    """`file` in up to n pieces of about equal bytes, cut between units (row groups, or slices of
    rows of a row group larger than size/UNIT, whose rows are taken to be alike in size)."""
    ends: list[tuple[int, float]] = []  # (row, cumulative bytes) at the end of every unit
    row, total = 0, 0.0
    for rows, nbytes in file.row_groups:
        cuts = max(1, min(rows, math.ceil(nbytes * UNIT / size)))
        for k in range(1, cuts + 1):
            ends.append((row + rows * k // cuts, total + nbytes * k / cuts))
        row, total = row + rows, total + nbytes
    edges = [0]
    for j in range(1, n):
        goal = total * j / n
        best = min((e for e in ends if e[0] > edges[-1] and e[0] < row), key=lambda e: abs(e[1] - goal), default=None)
        if best is not None:
            edges.append(best[0])
    edges.append(row)
    edges = sorted(set(edges))
    by_row = dict(ends) | {0: 0.0}
    return [
        PlannedShard(f"{file.name}-{k:03d}", (Piece(file.path, start, stop),), round(by_row[stop] - by_row[start]))
        for k, (start, stop) in enumerate(zip(edges, edges[1:]))
    ]
