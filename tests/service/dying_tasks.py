"""A build-wide step's task that kills the Dask worker running it: once (the worker is lost and
the task runs again elsewhere), or every time (a task no worker survives). Nothing here is about
text: the tests look at how the clustering step behaves when workers die."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Dying:
    fn: Callable[[Any], Any]
    marker: str  # once this file exists, the task runs; "" = it never does

    @property
    def __name__(self) -> str:  # the task's name, as DaskTasks names its keys and errors
        return self.fn.__name__

    def __call__(self, item: Any) -> Any:
        if not self.marker or not Path(self.marker).exists():
            if self.marker:
                Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fn(item)
