# One image for every corpus service in docker-compose.yml: the Prefect server, the worker that
# serves the deployments, and the Dask scheduler and workers (same code and pins everywhere, so
# shard jobs unpickle on the workers).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS="" \
    DO_NOT_TRACK=1

WORKDIR /app
# torch's CPU wheel first: from PyPI an unpinned index pulls a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.13.0"
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY flows ./flows
COPY sample_data ./sample_data
RUN pip install ".[s3]" && pip install --no-deps --force-reinstall "fasttext-community==0.11.9"

RUN useradd --create-home --uid 1000 corpus && mkdir -p /builds && chown corpus /builds
USER corpus
CMD ["corpus", "--help"]
