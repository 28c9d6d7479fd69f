"""Progress reporting hook: the CLI installs a rich display; flows run headless without one.

Keys are step names (`quality`, `dedup_signatures`, `pretrain`, ...); `label` is what a person
reads beside the bar (the step's label in its stage declaration).
"""

from __future__ import annotations

from typing import Protocol


class ProgressHook(Protocol):
    def start(self, key: str, total: int, unit: str, label: str) -> None: ...
    def advance(self, key: str, amount: int = 1, completed: int | None = None, total: int | None = None) -> None: ...
    def finish(self, key: str, note: str = "") -> None: ...
    def note(self, text: str) -> None: ...  # something a person waiting should know (no worker left)


class Silent:
    def start(self, key: str, total: int, unit: str, label: str) -> None:
        pass

    def advance(self, key: str, amount: int = 1, completed: int | None = None, total: int | None = None) -> None:
        pass

    def finish(self, key: str, note: str = "") -> None:
        pass

    def note(self, text: str) -> None:
        pass


hook: ProgressHook = Silent()


def install(new_hook: ProgressHook) -> None:
    global hook
    hook = new_hook
