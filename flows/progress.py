"""Progress reporting hook: the CLI installs a rich display; flows run headless without one."""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    def start(self, stage: str, total: int, unit: str) -> None: ...
    def advance(self, stage: str, amount: int = 1, completed: int | None = None) -> None: ...
    def finish(self, stage: str, note: str = "") -> None: ...


class Silent:
    def start(self, stage: str, total: int, unit: str) -> None:
        pass

    def advance(self, stage: str, amount: int = 1, completed: int | None = None) -> None:
        pass

    def finish(self, stage: str, note: str = "") -> None:
        pass


hook: ProgressHook = Silent()


def install(new_hook: ProgressHook) -> None:
    global hook
    hook = new_hook
