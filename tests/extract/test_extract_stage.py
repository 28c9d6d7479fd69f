"""The extract stage's steps as a build runs them (without Prefect): every document record becomes
a kept row with its main text or a removed row with its reason, and the other records are counted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import steps
from pipeline.config import BuildConfig
from pipeline.jobs import run_job
from pipeline.shards import needs_extraction, prepare_inputs
from pipeline.sources import build_sources
from pipeline.stage import ShardStep
from pipeline.stages import EXTRACT
from tests.conftest import SAMPLE
from tests.extract.warcs import CRAFTED, DOLMA_WARCS, GERMAN, crafted_warc, dolma_pages, wet_file


def extract(input_path: Path, build_dir: Path, part_bytes: int = 1 << 30, **section) -> tuple[pa.Table, pa.Table, list]:
    """Run the stage's steps in order, as flows/build.py does; (kept, removed, shard records)."""
    cfg = BuildConfig.model_validate({"extract": section})
    inputs = prepare_inputs(str(input_path), build_dir / "input", part_bytes)
    ctx = steps.build_context(build_dir, EXTRACT, inputs, cfg, build_sources(cfg, str(input_path)))
    for step in EXTRACT.steps:
        if isinstance(step, ShardStep):
            ctx.records[step.name] = [run_job(job) for job in steps.shard_jobs(EXTRACT, step, ctx)]
        elif step.when(ctx.config):
            ctx.artifacts[step.name] = step.run(ctx)
    folder = build_dir / "extract"
    kept = pa.concat_tables(pq.read_table(p) for p in sorted(folder.glob("part-*.parquet")))
    removed = pa.concat_tables(pq.read_table(p) for p in sorted((folder / "removed").glob("part-*.parquet")))
    return kept, removed, ctx.records["extract"]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> tuple[pa.Table, pa.Table, list]:
    folder = tmp_path_factory.mktemp("crafted")
    (folder / "in").mkdir()
    crafted_warc(folder / "in" / "crafted.warc.gz")
    return extract(folder / "in", folder / "build")


def test_every_response_record_is_kept_or_removed_with_its_reason(crafted):
    kept, removed, records = crafted
    outcome = {row["url"]: None for row in kept.to_pylist()}
    outcome |= {row["url"]: row["reason"] for row in removed.to_pylist()}
    assert outcome == CRAFTED | {"http://EXAMPLE.org:80/dup#top": None}
    assert set(removed["stage"].to_pylist()) == {"extract"}
    record = records[0]
    assert record["docs_in"] == 8 == record["docs_kept"] + record["docs_removed"]


def test_other_record_types_are_counted_not_made_documents(crafted):
    *_, records = crafted
    extra = records[0]["extra"]
    assert {k: v for k, v in extra.items() if k.startswith("records:")} == {
        "records:warcinfo": 1,
        "records:request": 8,
        "records:response": 8,
        "records:metadata": 1,
    }


def test_charset_declared_only_in_a_meta_tag_decodes_the_page(crafted):
    kept, *_ = crafted
    page = next(row for row in kept.to_pylist() if row["url"] == "https://example.org/latin1")
    assert GERMAN in page["text"]
    assert (page["title"], page["html_lang"]) == ("Köln", "de")


def test_a_page_fetched_twice_is_kept_from_its_latest_fetch(crafted):
    kept, removed, _ = crafted
    later = next(row for row in kept.to_pylist() if "dup" in row["url"])
    earlier = next(row for row in removed.to_pylist() if row["reason"] == "duplicate_url")
    assert later["warc_date"] > earlier["warc_date"]
    # ids are the file's name and the record's number: warcinfo is 1, then request/response pairs
    assert later["id"] == "crafted/17" and earlier["id"] == "crafted/15"


def test_kept_rows_carry_the_warc_columns(crafted):
    kept, *_ = crafted
    assert kept.column_names[:3] == ["id", "url", "domain"]
    assert {"text", "title", "html_lang", "warc_date", "warc_record_id"} <= set(kept.column_names)
    assert all(r.startswith("<urn:uuid:") for r in kept["warc_record_id"].to_pylist())


def test_dolma_warcs_become_37_pages_of_text_and_split_parts_give_the_same_rows(tmp_path):
    whole, removed, _ = extract(DOLMA_WARCS[0].parent, tmp_path / "whole")
    parts, _, records = extract(DOLMA_WARCS[0].parent, tmp_path / "parts", part_bytes=60_000)
    assert whole.num_rows + removed.num_rows == 37
    assert len(records) > 2
    assert parts.to_pylist() == whole.to_pylist()
    assert set(removed["reason"].to_pylist()) <= {"duplicate_url"}
    assert all(len(text) > 100 for text in whole["text"].to_pylist())


def test_the_blocklist_and_the_domain_cap_remove_pages_unread(tmp_path):
    blocklist = tmp_path / "blocked.txt"
    blocklist.write_text("soldaini.net\n")
    kept, removed, _ = extract(
        DOLMA_WARCS[0].parent, tmp_path / "b", url_blocklist=str(blocklist), max_docs_per_domain=2
    )
    reasons = {row["url"]: row["reason"] for row in removed.to_pylist()}
    assert {url for url, r in reasons.items() if r == "url_blocklist"} == {
        url for url, _ in dolma_pages() if "soldaini.net" in url
    }
    assert max(kept.group_by("domain").aggregate([("id", "count")])["id_count"].to_pylist()) == 2
    assert "domain_cap" in reasons.values()


def test_resiliparse_mode_extracts_the_same_pages(tmp_path):
    kept, removed, _ = extract(DOLMA_WARCS[0].parent, tmp_path / "b", extractor="resiliparse")
    assert kept.num_rows + removed.num_rows == 37 and kept.num_rows >= 35


def test_a_too_large_payload_is_removed_unread(tmp_path):
    _, removed, _ = extract(DOLMA_WARCS[0].parent, tmp_path / "b", max_html_bytes=100_000)
    assert "too_large" in removed["reason"].to_pylist()


def test_an_html_table_is_extracted_like_a_warc(tmp_path):
    pages = dolma_pages()[:5]
    folder = tmp_path / "in"
    folder.mkdir()
    html = [body.decode("utf-8") for _, body in pages]
    pq.write_table(pa.table({"url": [u for u, _ in pages], "html": html}), folder / "pages.parquet")
    (folder / "more.jsonl").write_text(
        "".join(json.dumps({"url": u, "html": h}) + "\n" for (u, _), h in zip(pages, html))
    )
    kept, removed, _ = extract(folder, tmp_path / "b", drop_duplicate_urls=False)
    assert kept.num_rows == 10 and removed.num_rows == 0
    assert sorted(kept["id"].to_pylist())[:2] == ["more/0", "more/1"]


def test_wet_records_are_documents_whose_text_is_taken_as_it_is(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    texts = {"https://example.org/a": GERMAN, "https://example.org/b": "  \n "}
    wet_file(folder / "crawl.warc.wet.gz", texts)
    kept, removed, _ = extract(folder, tmp_path / "b")
    assert kept["text"].to_pylist() == [GERMAN]
    assert removed["reason"].to_pylist() == ["empty_extraction"]


def test_text_shards_do_not_need_extraction_and_skip_the_stage(tmp_path):
    inputs = prepare_inputs(str(SAMPLE), tmp_path / "input")
    assert not any(needs_extraction(shard.origin) for shard in inputs)
    assert not EXTRACT.applies(inputs)
    assert all(needs_extraction(path) for path in DOLMA_WARCS)


def test_raw_web_and_text_shards_in_one_input_are_refused(tmp_path):
    from pipeline.errors import InputError

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(DOLMA_WARCS[0], folder)
    shutil.copy(SAMPLE / "books" / "part-00000.parquet", folder)
    with pytest.raises(InputError, match="mixes raw web files"):
        prepare_inputs(str(folder), tmp_path / "input")
