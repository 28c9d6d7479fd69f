"""Planning scheduled builds: each takes only the shards no finished build took; an unfinished
one is planned again with its own inputs (less the removed ones), unless it was cancelled, or
failed with nothing changed since."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import incremental, status
from pipeline.config import BuildConfig
from pipeline.errors import InputError
from tests.service.conftest import write_input


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
    assert again == incremental.Plan(first.build_dir, first.sources, resumed=True)


def test_a_file_removed_from_an_unfinished_build_is_dropped_and_the_build_starts_again(small_input, tmp_path):
    out = tmp_path / "scheduled"
    shutil.copy(small_input / "part-00001.parquet", small_input / "part-00002.parquet")
    first = incremental.next_build(str(small_input), out)
    made = first.build_dir / "nap" / "part-00002.parquet"  # an output of the third file, by its name
    made.parent.mkdir(parents=True)
    made.write_bytes(b"done")
    status.write(first.build_dir, "interrupted")
    (small_input / "part-00001.parquet").unlink()
    again = incremental.next_build(str(small_input), out)
    assert again == incremental.Plan(first.build_dir, {"input": [first.inputs[0], first.inputs[2]]}, resumed=True)
    assert not made.exists() and (first.build_dir / incremental.PLAN).exists()
    assert incremental.next_build(str(small_input), out) == again  # dropped once: nothing removed again


def test_a_failed_build_is_held_until_its_settings_or_inputs_change(small_input, tmp_path):
    out = tmp_path / "scheduled"
    first = incremental.next_build(str(small_input), out, settings="config A")
    status.write(first.build_dir, "failed", error="boom.")
    held = incremental.next_build(str(small_input), out, settings="config A")
    assert isinstance(held, incremental.Held) and "build-0001 failed" in held.reason and "boom." in held.reason
    assert incremental.next_build(str(small_input), out, settings="config A", retry=True).resumed
    status.write(first.build_dir, "failed", error="boom.")
    assert incremental.next_build(str(small_input), out, settings="config B").resumed
    status.write(first.build_dir, "failed", error="boom again.")
    (small_input / "part-00001.parquet").write_bytes((small_input / "part-00000.parquet").read_bytes())
    assert incremental.next_build(str(small_input), out, settings="config B").resumed


def test_a_cancelled_build_is_held_whatever_changed_until_a_run_asks_to_retry(small_input, tmp_path):
    out = tmp_path / "scheduled"
    first = incremental.next_build(str(small_input), out, settings="config A")
    status.write(first.build_dir, "cancelled", run="brave-fox")
    held = incremental.next_build(str(small_input), out, settings="config B")
    assert (
        isinstance(held, incremental.Held) and "build-0001 was cancelled" in held.reason and "brave-fox" in held.reason
    )
    assert incremental.next_build(str(small_input), out, retry=True) == incremental.Plan(
        first.build_dir, first.sources, resumed=True
    )


def test_an_empty_input_folder_has_nothing_new_and_a_missing_one_is_an_error(tmp_path):
    (tmp_path / "incoming").mkdir()
    assert incremental.next_build(str(tmp_path / "incoming"), tmp_path / "scheduled") is None
    with pytest.raises(InputError, match="no such file or folder"):
        incremental.next_build(str(tmp_path / "elsewhere"), tmp_path / "scheduled")


def test_each_source_is_watched_for_its_own_new_shards_and_a_build_holds_only_the_sources_with_new_ones(
    sample_table, tmp_path
):
    """`service.sources`: a new shard in one source is a build of that source's new shard alone,
    with that source's own settings; the same bytes in another source are new there."""
    web = write_input(tmp_path / "web", sample_table.slice(0, 40))
    books = write_input(tmp_path / "books", sample_table.slice(40, 40), shards=1)
    cfg = BuildConfig.model_validate(
        {
            "dedup": {"source_priority": ["books", "web"]},
            "service": {
                "sources": [
                    {"name": "web", "input": str(web), "kind": "web", "weight": 0.7},
                    {"name": "books", "input": str(books), "kind": "books", "weight": 0.3},
                ]
            },
        }
    )
    out = tmp_path / "scheduled"
    first = incremental.next_build(cfg.service.inputs(), out)
    assert first.sources == {
        "web": [str(web / "part-00000.parquet"), str(web / "part-00001.parquet")],
        "books": [str(books / "part-00000.parquet")],
    }
    incremental.mark_finished(first)
    assert incremental.next_build(cfg.service.inputs(), out) is None

    write_input(tmp_path / "more", sample_table.slice(80, 20), shards=1).joinpath("part-00000.parquet").rename(
        books / "part-00001.parquet"
    )
    shutil.copy(web / "part-00000.parquet", books / "part-00002.parquet")  # web's bytes, new to books
    second = incremental.next_build(cfg.service.inputs(), out)
    assert second.sources == {"books": [str(books / "part-00001.parquet"), str(books / "part-00002.parquet")]}
    input, config = incremental.build_input(cfg, second)
    built = BuildConfig.model_validate(config)
    assert input is None and [(s.name, s.kind, s.input, s.weight) for s in built.sources] == [
        ("books", "books", second.sources["books"], 0.3)
    ]
    assert built.dedup.source_priority == ["books"]  # web is not in this build


def test_a_missing_source_folder_is_an_error_naming_the_source(tmp_path):
    (tmp_path / "web").mkdir()
    sources = {"web": str(tmp_path / "web"), "books": str(tmp_path / "gone")}
    with pytest.raises(InputError, match=r"^source 'books': .*gone: no such file or folder"):
        incremental.next_build(sources, tmp_path / "scheduled")
