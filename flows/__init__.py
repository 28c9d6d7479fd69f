"""Prefect flows, deployments and the `corpus` CLI. No text logic here: see `pipeline/`."""

import os

# Before Prefect is imported anywhere: no telemetry, and no network look-ups from presidio's
# email recognizer (tldextract would fetch the public suffix list).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
# The embedded (ephemeral) API server starts in a subprocess; on a busy 2-core machine it can
# take longer than Prefect's default 20 s, which would fail the build before it starts.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
