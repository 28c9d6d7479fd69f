"""WARC files made for the tests with warcio (a second implementation beside fastwarc), from real
pages: those of the dolma fixtures (tests/fixtures/web/README.md), read back with warcio.

`crafted_warc` writes one record of every kind the extract stage must tell apart; `CRAFTED` says
what becomes of each.
"""

from __future__ import annotations

import zlib
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "web"
DOLMA_WARCS = sorted(FIXTURES.glob("*.warc.gz"))
GERMAN = "Grüße aus Köln: die Straßenbahn fährt über den Rhein, und die Bäckerei öffnet früh."


def dolma_pages() -> list[tuple[str, bytes]]:
    """(URL, HTML payload) of every response in the dolma fixtures, in file order."""
    pages = []
    for path in DOLMA_WARCS:
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response":
                    url = record.rec_headers.get_header("WARC-Target-URI").strip("<>")
                    pages.append((url, record.content_stream().read()))
    return pages


def _response(writer: WARCWriter, url: str, body: bytes, status: str, headers: list, date: str) -> None:
    http = StatusAndHeaders(status, headers + [("Content-Length", str(len(body)))], protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url, "response", payload=BytesIO(body), http_headers=http, warc_headers_dict={"WARC-Date": date}
    )
    writer.write_record(record)


def latin1_page() -> bytes:
    """A page whose charset only its meta tag declares (ISO-8859-1: cp1252 as browsers read it)."""
    html = (
        '<html lang="de"><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
        f"<title>Köln</title></head><body><article><h1>Köln</h1><p>{GERMAN}</p><p>{GERMAN}</p></article></body></html>"
    )
    return html.encode("iso-8859-1")


# url -> what becomes of the record: a kept document, or the reason it is removed
CRAFTED = {
    "https://example.org/utf8": None,
    "https://example.org/latin1": None,
    "https://example.org/missing": "http_status",
    "https://example.org/logo.png": "not_html",
    "https://example.org/binary": "decode_error",
    "https://example.org/empty": "empty_extraction",
    "https://example.org/dup": "duplicate_url",  # the earlier of two fetches
}


def crafted_warc(path: Path) -> Path:
    """A WARC (one gzip member per record) with a warcinfo record, then for each URL of CRAFTED a
    request and a response record, the second fetch of /dup last, and a metadata record."""
    (_, page), (_, other) = dolma_pages()[2:4]
    text = "text/html; charset=utf-8"
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests/extract/warcs.py"}))
        responses = [
            ("https://example.org/utf8", page, "200 OK", [("Content-Type", text)]),
            ("https://example.org/latin1", latin1_page(), "200 OK", [("Content-Type", "text/html")]),
            (
                "https://example.org/missing",
                b"<html><body>Not found</body></html>",
                "404 Not Found",
                [("Content-Type", text)],
            ),
            (
                "https://example.org/logo.png",
                b"\x89PNG\r\n\x1a\n" + bytes(64),
                "200 OK",
                [("Content-Type", "image/png")],
            ),
            ("https://example.org/binary", b"\x00\x01\x02\xff" * 64, "200 OK", [("Content-Type", "text/html")]),
            ("https://example.org/empty", b"<html><body></body></html>", "200 OK", [("Content-Type", text)]),
            ("https://example.org/dup", other, "200 OK", [("Content-Type", text)]),
            ("http://EXAMPLE.org:80/dup#top", other, "200 OK", [("Content-Type", text)]),  # the same page, later
        ]
        for second, (url, body, status, headers) in enumerate(responses):
            request = writer.create_warc_record(
                url, "request", http_headers=StatusAndHeaders(f"GET {url} HTTP/1.1", [], is_http_request=True)
            )
            writer.write_record(request)
            _response(writer, url, body, status, headers, f"2024-04-25T16:24:{10 + second:02d}Z")
        writer.write_record(writer.create_warc_record("metadata://tests", "metadata", payload=BytesIO(b"x: y\n")))
    return path


def wet_file(path: Path, texts: dict[str, str]) -> Path:
    """A WET file: a warcinfo record, then one `conversion` record of plain text per URL."""
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "tests/extract/warcs.py"}))
        for url, text in texts.items():
            record = writer.create_warc_record(
                url,
                "conversion",
                payload=BytesIO(text.encode()),
                warc_headers_dict={"Content-Type": "text/plain", "WARC-Date": "2024-04-25T16:24:44Z"},
            )
            writer.write_record(record)
    return path


def members(path: Path) -> list[int]:
    """The byte offset of every gzip member (= record) of a WARC file, found with zlib."""
    data = path.read_bytes()
    offsets, at = [], 0
    while at < len(data):
        offsets.append(at)
        inflate = zlib.decompressobj(wbits=31)
        inflate.decompress(data[at:])
        at = len(data) - len(inflate.unused_data)
    return offsets
