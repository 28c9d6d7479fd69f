"""URLs of fetched pages: the key two fetches of one page share, and the domain a page counts for.

Two fetches are of the same page when their URLs differ only in what a server does not see or
does not distinguish: scheme (http/https), host case, a default port, the fragment, an empty
path. The query stays: `?id=1` and `?id=2` are different pages.
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def clean(url: str | None) -> str | None:
    """A WARC-Target-URI as written (WARC 1.0 writers such as wget wrap it in <...>)."""
    if not url:
        return None
    url = url.strip()
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1].strip()
    return url or None


def key(url: str) -> str:
    """The normalised URL: fetches with the same key are duplicates of one page."""
    parts = urlsplit(url if "//" in url else "//" + url)
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the URL as it is
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(parts.scheme.lower())) else f"{host}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{netloc}{parts.path or '/'}{query}"


def domain(url: str | None) -> str | None:
    """The host a page counts for (lower case, without `www.`)."""
    if not url:
        return None
    host = (urlsplit(url if "//" in url else "//" + url).hostname or "").rstrip(".")
    return host.removeprefix("www.") or None
