"""A stage for service tests, registered by naming this module in the config's `plugins`:
`nap` keeps every document after sleeping `seconds` per shard (a build that takes as long as a
test needs), and the job of a shard holding the document `die_on` kills the process running it
(a shard that kills its worker). Nothing here is about text: the tests look at how the service
behaves."""

from __future__ import annotations

import os
import signal
import time

import pyarrow as pa

from pipeline.config import Section
from pipeline.stage import ShardContext, ShardStep, Stage, StageResult, split_by_reason
from pipeline.stages import register


class NapConfig(Section):
    enabled: bool = True
    seconds: float = 0.0
    """How long each shard job sleeps."""
    die_on: str = ""
    """A document id: the job of the shard holding it kills the process running it."""


def nap(table: pa.Table, ctx: ShardContext) -> StageResult:
    if ctx.config.die_on and ctx.config.die_on in table.column("id").to_pylist():
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(ctx.config.seconds)
    return split_by_reason(table, [None] * table.num_rows, ctx.stage)


NAP = Stage(
    name="nap",
    config=NapConfig,
    description="Keeps every document, slowly.",
    steps=(ShardStep("nap", nap, "nap"),),
)
register(NAP)
