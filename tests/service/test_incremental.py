"""Planning scheduled builds: each takes only the shards no finished build took; an unfinished
one is planned again with its own inputs."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import incremental


def test_second_build_takes_only_the_new_shard(small_input, tmp_path):
    out = tmp_path / "scheduled"
    first = incremental.next_build(str(small_input), out)
    assert first.build_dir == out / "build-0001" and len(first.inputs) == 2
    incremental.mark_finished(first)
    shutil.copy(small_input / "part-00001.parquet", small_input / "part-00002.parquet")  # same bytes: not new
    assert incremental.next_build(str(small_input), out) is None
    (small_input / "part-00003.parquet").write_bytes((small_input / "part-00000.parquet").read_bytes()[:-1] + b"\0")
    second = incremental.next_build(str(small_input), out)
    assert second.build_dir == out / "build-0002" and second.inputs == [str(small_input / "part-00003.parquet")]


def test_unfinished_build_is_planned_again_with_its_own_inputs(small_input, tmp_path):
    out = tmp_path / "scheduled"
    first = incremental.next_build(str(small_input), out)
    new = pq.read_table(small_input / "part-00000.parquet").slice(0, 5)
    pq.write_table(
        new.set_column(0, "id", pa.array([f"new-{i}" for i in range(5)])), small_input / "part-00002.parquet"
    )
    again = incremental.next_build(str(small_input), out)
    assert again == incremental.Plan(first.build_dir, first.inputs, resumed=True)
