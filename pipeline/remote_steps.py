"""Build-wide steps on a Dask worker against the build at its URL (`--out s3://...` with a
cluster): the flow sends a step with its context and gets back only the step's record.

The flow's `BuildContext` names files by the paths of its working copy (pipeline/remote.py),
which holds only metadata. On a worker the step runs in a working copy of the worker's own (the
same URL's `working_dir`, under the worker's `CORPUS_CACHE_DIR`): `run_step_at_url` pulls the
whole copy (what changed at the URL since that worker's last step: a worker's first step of a
build fetches the earlier stages' outputs, later steps little more), re-roots the context there,
runs the step as the flow's pool would (`measured`: the record says where it ran, its wall time
and peak memory), pushes what it wrote (outputs before done records), and returns the record.

Two kinds of file a context names lie outside the copy. The input shards: BuildStore publishes
them at the URL, and the worker fetches them into its copy's `input/flow/` under their path on
the flow's machine, so that a step ordering shards by path orders them as the flow would (not
guaranteed when it reads input shards and a stage's outputs at once: raw web input and text
shards with no filter stage between the extract stage and the step). And
folders of another working copy that the config names (a scheduled build's dedup index, in the
copy of the build's root): synced as the build is, before and after the step. Any other file the
config names (reference texts, a classifier model, benchmarks) must be readable on the workers,
as it must for the shard jobs: a URL or a path every machine has.

A step's tasks (pipeline/tasks.py: the dedup clustering's) go to the cluster, as they do for a
build on a shared folder: the step waits in a worker's client, its thread handed back to the
worker meanwhile (flows/cluster.py), and the tasks read and write their work folder, the
signature files and the decisions at the build's URL (`BuildContext.shared`). Not in a pool of
the worker's own: a Dask worker is a daemonic process, which cannot start one.

A lost worker: Dask runs the step again on another, which skips it when its done record and
outputs are at the URL (`BuildContext.once`) and otherwise redoes it, its tasks skipping those
whose outputs are at the URL already.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import remote, storage
from pipeline.config import BuildConfig
from pipeline.errors import BuildError
from pipeline.remote_jobs import PUBLISHED, BuildStore
from pipeline.shards import fingerprint
from pipeline.stage import BuildContext
from pipeline.tasks import measured


@dataclass(frozen=True)
class UrlStep:
    """A build step as a worker runs it: the step, its context as the flow made it, the build's
    URL and the flow's working copy (the root of the context's paths)."""

    fn: Callable[[BuildContext], dict]
    ctx: BuildContext
    url: str
    root: str
    inputs: dict[str, str]  # an input shard's path on the flow's machine -> its key under the URL
    folders: dict[str, str]  # a folder of another working copy the config names -> its URL
    summary: bool = False  # a stage's summary (returned as it is), not a step (measured)


def url_step(
    store: BuildStore, fn: Callable[[BuildContext], dict], ctx: BuildContext, summary: bool = False
) -> UrlStep:
    """The flow's side: the step for a worker, its input shards published at the URL."""
    outside = [path for _, path in ctx.shards] + [shard.path for shard in ctx.inputs]
    inputs = {str(path): key for path in outside if (key := store.key_of(path)).startswith(PUBLISHED)}
    sent = dataclasses.replace(ctx, on_progress=None)  # the flow's callback means nothing on a worker
    return UrlStep(fn, sent, store.url, str(store.root), inputs, _other_copies(ctx.build_config, store.root), summary)


def run_step_at_url(task: UrlStep) -> dict:
    """Run one build step (or a stage's summary) in this worker's working copy of the build at
    its URL; returns its record. Safe to call in a Dask worker started anywhere."""
    from distributed import get_worker

    where = get_worker().address
    local = remote.working_dir(task.url)
    remote.pull(task.url, local)
    for url in task.folders.values():
        remote.pull(url, remote.working_dir(url))
    fs, base = storage.open_url(task.url)
    with storage.store_errors(task.url, "reach the build there", BuildError):
        for path, key in task.inputs.items():
            here = _input_here(local, path)
            # Its key names its sha256: a file already there with those bytes is not fetched again.
            if not here.exists() or fingerprint(here) != key.split("/")[-2]:
                here.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(f"{base}/{key}", str(here))
    ctx = _rerooted(task, local)
    record = task.fn(ctx) if task.summary else measured(task.fn, ctx) | {"ran_on": where}
    remote.push(task.url, local)
    for url in task.folders.values():
        remote.push(url, remote.working_dir(url))
    return record


def _rerooted(task: UrlStep, local: Path) -> BuildContext:
    """The flow's context with every path in this worker's copy; its tasks (on the cluster)
    reach the build at its URL."""
    ctx, root = task.ctx, Path(task.root)

    def here(path: Path) -> Path:
        return _input_here(local, str(path)) if str(path) in task.inputs else local / path.relative_to(root)

    config, section = ctx.build_config, ctx.config
    if task.folders:
        there = {path: str(remote.working_dir(url)) for path, url in task.folders.items()}
        config = BuildConfig.model_validate(_replaced(config.model_dump(mode="json"), there))
        section = config.section(ctx.stage)
    return dataclasses.replace(
        ctx,
        build_dir=local,
        folder=here(ctx.folder),
        shards=[(name, here(path)) for name, path in ctx.shards],
        inputs=[dataclasses.replace(shard, path=here(shard.path)) for shard in ctx.inputs],
        build_config=config,
        config=section,
        url=task.url,
    )


def _input_here(local: Path, path: str) -> Path:
    return local / remote.LOCAL_ONLY[0] / "flow" / path.lstrip("/")


def _other_copies(cfg: BuildConfig, root: Path) -> dict[str, str]:
    """Folders the config names that belong to another working copy than the build's (by URL):
    a scheduled build's dedup index in the copy of its root. Input caches stay local."""
    found = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict | list):
            for item in value.values() if isinstance(value, dict) else value:
                visit(item)
        elif isinstance(value, str) and value.startswith("/"):
            path = Path(value)
            if path.is_relative_to(root) or any(part in remote.LOCAL_ONLY for part in path.parts):
                return
            if (url := remote.url_of(path)) is not None:
                found[value] = url

    visit(cfg.model_dump(mode="json"))
    return found


def _replaced(value: Any, paths: dict[str, str]) -> Any:
    """A config's data with the strings that are keys of `paths` replaced by their values."""
    if isinstance(value, dict):
        return {key: _replaced(item, paths) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, paths) for item in value]
    return paths.get(value, value) if isinstance(value, str) else value
