"""The extract stage: raw web (WARC/WET records, HTML table rows) to documents of main text.

Its steps (pipeline/stages.py):
1. `fetches`, per raw part: the URL, date and domain of every fetch that passed the header checks,
   in `extract/_fetches/` (headers only: no payload is read);
2. `selection`, once per build: which of those fetches go (`duplicate_url`: a page fetched again
   later in the build, the latest fetch kept; `domain_cap`: past extract.max_docs_per_domain), in
   `extract/_selection/`;
3. `extract`, per raw part: every document record becomes a row, kept with its text or removed
   with the first reason that applies, in this order:
       http_status -> not_html -> url_blocklist -> too_large   (headers: steps 1 and 3 alike)
       -> duplicate_url -> domain_cap                           (step 2's selection)
       -> decode_error -> not_html (a body that is no page) -> empty_extraction
Documents are `response` records (WARC), `conversion` records (WET, whose text is taken as it
is) and table rows; the other records are counted by type in the stage's `records:` counters.
A document's id is `<file name>/<record number>` (`/<row>` for a table).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import ExtractConfig
from pipeline.extract import html, urls
from pipeline.extract.extractors import EXTRACTORS
from pipeline.extract.warc import DOCUMENT_TYPES, records
from pipeline.quality.keywords import load_domains, url_blocked
from pipeline.shards import RawPart, combined_fingerprint, raw_stem, read_shard, write_shard
from pipeline.stage import BuildContext, ShardContext, StageResult, split_by_reason

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("url", pa.string()),
        ("domain", pa.string()),
        ("text", pa.string()),
        ("title", pa.string()),
        ("html_lang", pa.string()),
        ("warc_date", pa.string()),
        ("warc_record_id", pa.string()),
    ]
)
FETCHES = pa.schema([("number", pa.int64()), ("url_key", pa.string()), ("date", pa.string()), ("domain", pa.string())])
TABLE_BATCH = 64  # HTML table rows read at a time


@dataclass
class Fetch:
    """One document record (or table row): its headers, and its payload on demand."""

    number: int
    url: str | None
    date: str | None
    record_id: str | None
    status: int | None  # None where there is no HTTP (WET, tables)
    content_type: str | None
    charset: str | None
    length: int  # payload bytes as the headers say
    read: Callable[[], bytes | str]
    is_text: bool = False  # a WET conversion record: the text itself, no HTML


def fetches(part: RawPart) -> Iterator[Fetch]:
    """The part's documents in order, one at a time."""
    if part.format == "html":
        yield from _table_rows(part)
        return
    for found in records(Path(part.file), part.start, part.end, part.first_record):
        record = found.record
        kind = str(record.record_type)
        if kind not in DOCUMENT_TYPES:
            continue
        headers = record.headers
        status = content_type = charset = None
        if kind == "response":
            try:
                record.parse_http(auto_decode="all", strict_mode=False)
                status, content_type, charset = (
                    record.http_headers.status_code,
                    record.http_content_type,
                    record.http_charset,
                )
            except (OSError, ValueError):  # not an HTTP response: status stays None (http_status)
                pass
        else:
            content_type = headers.get("Content-Type")
        yield Fetch(
            number=found.number,
            url=urls.clean(headers.get("WARC-Target-URI")),
            date=headers.get("WARC-Date"),
            record_id=headers.get("WARC-Record-ID"),
            status=status,
            content_type=content_type,
            charset=charset,
            length=record.content_length,
            read=record.reader.read,
            is_text=kind == "conversion",
        )


def _table_rows(part: RawPart) -> Iterator[Fetch]:
    file = pq.ParquetFile(part.file)
    columns = [c for c in ("html", "url") if c in file.schema_arrow.names]
    number = 0
    for batch in file.iter_batches(batch_size=TABLE_BATCH, columns=columns):
        rows = batch.to_pydict()
        for i, page in enumerate(rows["html"]):
            yield Fetch(
                number=number,
                url=rows["url"][i] if "url" in rows else None,
                date=None,
                record_id=None,
                status=None,
                content_type="text/html",
                charset=None,
                length=len(page.encode()),
                read=lambda page=page: page,
            )
            number += 1


def _screen(fetch: Fetch, cfg: ExtractConfig, blocked: frozenset[str]) -> str | None:
    """The checks on headers alone, the same in steps 1 and 3."""
    if fetch.status is not None and fetch.status != 200:
        return "http_status"
    if fetch.status is None and not fetch.is_text and fetch.content_type is None:
        return "http_status"  # a response record that is not HTTP
    if not fetch.is_text and fetch.content_type and not html.is_html(fetch.content_type, b""):
        return "not_html"
    if blocked and url_blocked(fetch.url, blocked):
        return "url_blocklist"
    if fetch.length > cfg.max_html_bytes:
        return "too_large"
    return None


def _blocklist(cfg: ExtractConfig) -> frozenset[str]:
    return load_domains(cfg.url_blocklist) if cfg.url_blocklist else frozenset()


def fetch_shard(part: RawPart, ctx: ShardContext) -> StageResult:
    """Step 1: what the selection needs of every fetch that passed the header checks."""
    cfg: ExtractConfig = ctx.config
    blocked = _blocklist(cfg)
    rows = [
        (f.number, urls.key(f.url) if f.url else None, f.date, urls.domain(f.url))
        for f in fetches(part)
        if _screen(f, cfg, blocked) is None
    ]
    table = pa.Table.from_pylist([dict(zip(FETCHES.names, row)) for row in rows], schema=FETCHES)
    out = ctx.out_dir / "_fetches" / f"{ctx.shard}.parquet"
    write_shard(table, out)
    return StageResult(files=[out])


def select(ctx: BuildContext) -> dict:
    """Step 2: the fetches that go, over the whole build: all but the latest fetch of a URL (ties:
    the later in input order), then, per domain, those past max_docs_per_domain in input order."""
    cfg: ExtractConfig = ctx.config
    records = ctx.records["extract_fetches"]
    out = ctx.folder / "_selection" / "removed.parquet"
    fingerprint = combined_fingerprint([r["fingerprint"] for r in records] + [ctx.config_hash])

    def step() -> dict:
        tables = [_with_shard(read_shard(ctx.folder / r["outputs"][0]), r["name"]) for r in records]
        found = pa.concat_tables(tables).to_pylist() if tables else []
        order = sorted(range(len(found)), key=lambda i: (found[i]["shard"], found[i]["number"]))
        reasons: dict[int, str] = {}
        if cfg.drop_duplicate_urls:
            latest: dict[str, int] = {}
            for i in order:
                url_key = found[i]["url_key"]
                if url_key is None:
                    continue
                j = latest.get(url_key)
                if j is None or (found[i]["date"] or "") >= (found[j]["date"] or ""):
                    latest[url_key] = i
                    if j is not None:
                        reasons[j] = "duplicate_url"
                else:
                    reasons[i] = "duplicate_url"
        if cfg.max_docs_per_domain:
            per_domain: Counter[str] = Counter()
            for i in order:
                if i in reasons:
                    continue
                per_domain[found[i]["domain"] or ""] += 1
                if per_domain[found[i]["domain"] or ""] > cfg.max_docs_per_domain:
                    reasons[i] = "domain_cap"
        removed = sorted(reasons)
        table = pa.table(
            {
                "shard": pa.array([found[i]["shard"] for i in removed], pa.string()),
                "number": pa.array([found[i]["number"] for i in removed], pa.int64()),
                "reason": pa.array([reasons[i] for i in removed], pa.string()),
            }
        )
        write_shard(table, out)
        counts = Counter(reasons.values())
        note = ", ".join(f"{n:,} {reason}" for reason, n in sorted(counts.items())) or "none removed"
        return {"artifact": ctx.artifact(out), "fetches": len(found), "note": f"{len(found):,} fetches; {note}"}

    return ctx.once("extract_selection", fingerprint, [out], step)


def _with_shard(table: pa.Table, shard: str) -> pa.Table:
    return table.append_column("shard", pa.array([shard] * table.num_rows, pa.string()))


def _selected_out(ctx: ShardContext) -> dict[int, str]:
    """Record number -> reason, for this shard's fetches that step 2 removed."""
    path = ctx.artifacts.get("extract_selection")
    if path is None:
        return {}
    table = read_shard(path)
    mine = table.filter(pc.equal(table["shard"], ctx.shard))
    return dict(zip(mine["number"].to_pylist(), mine["reason"].to_pylist()))


def extract_shard(part: RawPart, ctx: ShardContext) -> StageResult:
    """Step 3: every document of the part, kept with its main text or removed with a reason."""
    cfg: ExtractConfig = ctx.config
    blocked = _blocklist(cfg)
    selected_out = _selected_out(ctx)
    extract = EXTRACTORS[cfg.extractor]
    stem = raw_stem(Path(part.file))
    rows, reasons = [], []
    cpu = 0.0
    for fetch in fetches(part):
        row = {
            "id": f"{stem}/{fetch.number}",
            "url": fetch.url,
            "domain": urls.domain(fetch.url),
            "text": "",
            "title": None,
            "html_lang": None,
            "warc_date": fetch.date,
            "warc_record_id": fetch.record_id,
        }
        reason = _screen(fetch, cfg, blocked) or selected_out.get(fetch.number)
        if reason is None:
            start = time.process_time()
            reason = _extract(fetch, row, extract)
            cpu += time.process_time() - start
        rows.append(row)
        reasons.append(reason)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    result = split_by_reason(table, reasons, ctx.stage or "extract")
    result.extra = {f"records:{kind}": n for kind, n in part.records.items()}
    if part.format == "html":
        result.extra["records:table_row"] = part.docs
    result.extra["extract_cpu_ms"] = round(cpu * 1000)
    return result


def _extract(fetch: Fetch, row: dict, extract: Callable[[str, str | None], str]) -> str | None:
    """Read, decode and extract one page into `row`; the reason it is removed, or None."""
    payload = fetch.read()
    if isinstance(payload, str):
        page = payload
    else:
        page = html.decode(payload, fetch.charset if not fetch.is_text else "utf-8")
        if page is None:
            return "decode_error"
    if fetch.is_text:
        row["text"] = page.strip()
        return None if row["text"] else "empty_extraction"
    if not isinstance(payload, str) and not fetch.content_type and not html.is_html(None, payload):
        return "not_html"
    row["title"], row["html_lang"] = html.page_title(page), html.page_lang(page)
    row["text"] = extract(page, fetch.url)
    return None if row["text"] else "empty_extraction"


def stage_funnel(summary: dict) -> dict:
    """The funnel row: documents kept, and the share of HTML bytes that did not become text."""
    share = 1 - summary["bytes_kept"] / summary["bytes_in"] if summary["bytes_in"] else None
    docs_share = summary["docs_removed"] / summary["docs_in"] if summary["docs_in"] else None
    return {
        **{k: summary[k] for k in ("docs_in", "docs_kept", "docs_removed", "bytes_in", "bytes_kept", "bytes_removed")},
        "docs": summary["docs_kept"],
        "bytes": summary["bytes_kept"],
        "docs_removed_share": docs_share,
        "bytes_removed_share": share,
    }
