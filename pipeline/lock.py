"""One build at a time per build directory.

Two builds writing into the same directory would interleave shards, done records and the
manifest. The lock is an `flock` on `BUILD_DIR/.lock`: the kernel releases it when its process
dies, even by SIGKILL, so a lock left behind by a killed build is stale by construction and the
next build simply takes it over. The file also names its owner (pid, host, start time, and the
run when a flow holds it) so that the refusal can say who holds the directory.

Re-entrant within one process: the CLI takes the lock before it checks the inputs and the flow
takes it again when it starts (a flow can also be started without the CLI, by a deployment).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import InputError

LOCK_NAME = ".lock"

# build dir -> (open file descriptor, how many times this process holds it)
_held: dict[Path, list[int]] = {}


class BuildRunning(InputError):
    """Another process holds the directory; `owner` is what its lock file says about it."""

    def __init__(self, build_dir: Path, owner: dict):
        run = f", run {owner['run']}" if owner.get("run") else ""
        super().__init__(
            f"{build_dir}: another build is running in this directory (pid {owner.get('pid', '?')} "
            f"on {owner.get('host', '?')}{run}, since {owner.get('started', '?')}); wait for it to finish "
            "or choose another --out."
        )
        self.owner = owner


def owner_of(build_dir: Path) -> dict:
    """The owner record a lock file holds (empty when unreadable or never written)."""
    try:
        return json.loads((build_dir / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}


def is_held(build_dir: Path) -> bool:
    """Whether a live process (this one included) holds BUILD_DIR's lock now."""
    build_dir = Path(build_dir).resolve()
    if build_dir in _held:
        return True
    try:
        fd = os.open(build_dir / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock this probe may have taken


@contextmanager
def build_lock(build_dir: Path, wait: bool = False, about: dict | None = None) -> Iterator[None]:
    """Hold BUILD_DIR exclusively for the `with` block. When another process holds it: raise
    `BuildRunning` naming the owner, or with `wait`, block until it lets go. `about` joins the
    owner record (the Prefect run holding it)."""
    build_dir = Path(build_dir).resolve()
    if build_dir in _held:
        _held[build_dir][1] += 1
        try:
            yield
        finally:
            _held[build_dir][1] -= 1
        return
    build_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(build_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(fd)
        raise BuildRunning(build_dir, owner_of(build_dir)) from None
    except BaseException:  # interrupted while waiting
        os.close(fd)
        raise
    # Ours now; whatever an earlier (dead) owner wrote is replaced.
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record | (about or {})).encode(), 0)
    _held[build_dir] = [fd, 1]
    try:
        yield
    finally:
        _held[build_dir][1] -= 1
        if _held[build_dir][1] == 0:
            del _held[build_dir]
            os.close(fd)  # releases the flock; the file stays as a record of the last owner
