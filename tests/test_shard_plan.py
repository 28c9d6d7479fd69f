"""The shard plan as a pure function: large files split near the shard size, tiny ones merged,
names that follow the files, the same plan for the same input."""

from __future__ import annotations

from pipeline.shard_plan import MB, InputFile, Piece, plan, shard_size


def file(number: int, *row_groups: tuple[int, int]) -> InputFile:
    return InputFile(f"part-{number:05d}", f"f{number}.parquet", tuple(row_groups))


def test_one_large_file_is_cut_into_pieces_near_the_shard_size_covering_every_row_once():
    big = file(0, *[(100, 1 * MB)] * 10)  # 10 row groups of 1 MB
    shards = plan([big], 2 * MB)
    assert [s.name for s in shards] == [f"part-00000-{k:03d}" for k in range(5)]
    rows = [(p.start, p.stop) for s in shards for p in s.pieces]
    assert rows == [(0, 200), (200, 400), (400, 600), (600, 800), (800, 1000)]
    assert all(s.bytes == 2 * MB for s in shards)


def test_a_row_group_larger_than_a_shard_is_cut_by_rows():
    one_group = file(3, (1185, 10 * MB))  # a writer's default: the whole file in one row group
    shards = plan([one_group], 1 * MB)
    assert len(shards) == 10
    assert shards[0].pieces[0].start == 0 and shards[-1].pieces[0].stop == 1185
    assert all(a.pieces[0].stop == b.pieces[0].start for a, b in zip(shards, shards[1:]))
    assert max(s.rows for s in shards) - min(s.rows for s in shards) <= 60


def test_tiny_files_are_merged_in_order_up_to_the_shard_size():
    tiny = [file(n, (10, 100_000)) for n in range(25)]  # 25 files of 0.1 MB
    shards = plan(tiny, 1 * MB)
    assert [s.name for s in shards] == ["part-00000", "part-00010", "part-00020"]
    assert [len(s.pieces) for s in shards] == [10, 10, 5]
    assert shards[0].pieces[1] == Piece("f1.parquet", 0, 10)


def test_files_near_the_shard_size_stay_whole_under_their_own_names():
    files = [file(0, (300, 400_000)), file(1, (250, 330_000)), file(2, (280, 390_000))]
    shards = plan(files, 1 * MB)
    assert [(s.name, s.pieces) for s in shards] == [(f.name, (Piece(f.path, 0, f.rows),)) for f in files]


def test_a_tiny_file_between_large_ones_is_not_merged_across_them():
    files = [file(0, (10, 50_000)), file(1, (500, 1 * MB)), file(2, (10, 50_000))]
    assert [s.name for s in plan(files, 1 * MB)] == ["part-00000", "part-00001", "part-00002"]


def test_the_plan_is_the_same_for_the_same_input():
    files = [file(n, *[(n + 7, (n * 37_000) % 900_000 + 1)] * (n % 4 + 1)) for n in range(40)]
    assert plan(files, 256 << 10) == plan(list(files), 256 << 10)


def test_the_shard_size_gives_each_worker_a_few_shards_within_the_bounds_in_powers_of_two():
    # 10 MB on 2 workers, 4 shards each: 1.25 MB wanted, 1 MB it is.
    assert shard_size(10 * MB, 2, target_mb=64, per_worker=4, min_mb=1) == 1 * MB
    # Not below min_mb, nor above target_mb.
    assert shard_size(2 * MB, 8, target_mb=64, per_worker=4, min_mb=1) == 1 * MB
    assert shard_size(100_000 * MB, 2, target_mb=64, per_worker=4, min_mb=1) == 64 * MB
    # A file rewritten a little larger does not move the size.
    assert shard_size(300 * MB, 4, 64, 4, 1) == shard_size(310 * MB, 4, 64, 4, 1) == 16 * MB


def test_a_few_small_files_are_not_merged():
    """The test build's case: three files of ~0.3 MB on 2 workers stay three shards; three of
    30 KB, fewer than the 16 shards 2 workers want, stay three jobs too (shard_split decides
    `merge` from the file count)."""
    files = [file(n, (229, 330_000)) for n in range(3)]
    size = shard_size(sum(f.bytes for f in files), 2, target_mb=64, per_worker=8, min_mb=0.25)
    assert [s.name for s in plan(files, size)] == ["part-00000", "part-00001", "part-00002"]
    tiny = [file(n, (30, 30_000)) for n in range(3)]
    size = shard_size(sum(f.bytes for f in tiny), 2, target_mb=64, per_worker=8, min_mb=0.25)
    assert [s.name for s in plan(tiny, size, merge=False)] == ["part-00000", "part-00001", "part-00002"]
    assert len(plan(tiny, size)) == 1


def test_thousands_of_tiny_files_become_a_few_shards_per_worker():
    files = [file(n, (3, 10_000)) for n in range(1000)]  # 10 MB in 10 KB files
    size = shard_size(sum(f.bytes for f in files), 2, target_mb=64, per_worker=8, min_mb=0.25)
    shards = plan(files, size)
    assert 16 <= len(shards) <= 32
    assert sum(s.rows for s in shards) == 3000


def test_tiny_files_are_merged_up_to_min_mb_however_many_shards_the_workers_want():
    """3.4 MB in 90 files of 38 KB on 2 workers wants 16 shards of 0.21 MB: the files merge into
    shards of min_mb (0.25 MB), as one 3.4 MB file is cut, not into 90 jobs of mostly overhead."""
    files = [file(n, (33, 38_000)) for n in range(90)]
    size = shard_size(sum(f.bytes for f in files), 2, target_mb=64, per_worker=8, min_mb=0.25)
    assert size == MB // 4
    shards = plan(files, size)
    assert len(shards) == 15 and all(s.bytes <= size for s in shards)
    assert [p.path for s in shards for p in s.pieces] == [f.path for f in files]
    one = plan([file(0, *[(33, 38_000)] * 90)], size)
    assert len(one) == 13
