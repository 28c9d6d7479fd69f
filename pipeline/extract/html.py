"""An HTTP payload to an HTML string, and what the page says of itself (language, title).

The charset comes from the HTTP header, then from a `<meta>` tag, then from the bytes: a strict
UTF-8 decode first (most of the web is UTF-8, and uchardet mistakes short, mostly-ASCII UTF-8
pages for cp1252), then uchardet (resiliparse). A declared charset is used only if the bytes
decode under it strictly. Names go through the WHATWG mapping, so `iso-8859-1` means cp1252 as
browsers read it. Bytes that decode under none of these are `decode_error`, as is a binary
payload (NUL bytes) labelled as HTML.
"""

from __future__ import annotations

import codecs
import html
import re

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5

# The HTML spec's prescan reads 1024 bytes for the meta charset; pages with long inline scripts
# in the head put it later, so a little more is read.
META_SCAN_BYTES = 4096
META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9_:.\-]+)""", re.IGNORECASE)
BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Share of U+FFFD tolerated when nothing decodes the bytes strictly: a page that is UTF-8 but for
# a few bad bytes is still a page.
MAX_REPLACED = 0.01
HEAD_CHARS = 65536  # where <html lang> and <title> are looked for
HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)", re.IGNORECASE)
TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
MAX_TITLE_CHARS = 500
HTML_TYPES = ("text/html", "application/xhtml+xml")


def is_html(content_type: str | None, body: bytes) -> bool:
    """An HTML content type; without one, a body that opens like a page."""
    if content_type:
        return content_type.split(";", 1)[0].strip().lower() in HTML_TYPES
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = map_encoding_to_html5(label.strip().strip("\"'"), fallback_utf8=False)
    try:
        return codecs.lookup(name).name if name else None
    except LookupError:
        return None


def _strict(body: bytes, codec: str | None) -> str | None:
    if codec is None:
        return None
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def decode(body: bytes, http_charset: str | None = None) -> str | None:
    """The payload as a str, or None when it does not decode (decode_error)."""
    for bom, codec in BOMS:
        if body.startswith(bom):
            return _strict(body, codec)
    if b"\0" in body[:META_SCAN_BYTES]:
        return None
    meta = META_CHARSET.search(body[:META_SCAN_BYTES])
    for label in (http_charset, meta and meta.group(1).decode("ascii")):
        if (text := _strict(body, _codec(label))) is not None:
            return text
    for codec in ("utf-8", _codec(detect_encoding(body))):
        if (text := _strict(body, codec)) is not None:
            return text
    text = body.decode("utf-8", errors="replace")
    return text if text.count("\ufffd") <= MAX_REPLACED * max(len(text), 1) else None


def page_lang(page: str) -> str | None:
    """The `<html lang>` value, lower case with `-` (`pt-br`), or None."""
    found = HTML_LANG.search(page, 0, HEAD_CHARS)
    return found.group(1).lower().replace("_", "-") if found else None


def page_title(page: str) -> str | None:
    found = TITLE.search(page, 0, HEAD_CHARS)
    if not found:
        return None
    title = " ".join(html.unescape(found.group(1)).split())
    return title[:MAX_TITLE_CHARS] or None
