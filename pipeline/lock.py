"""One build at a time per build directory.

Two builds writing into the same directory would interleave shards, done records and the
manifest. The lock is an `flock` on `BUILD_DIR/.lock`: the kernel releases it when its process
dies, even by SIGKILL, so a lock left behind by a killed build is stale by construction and the
next build simply takes it over. The file also names its owner (pid, host, start time) so that
the refusal can say who holds the directory.

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


def owner_of(build_dir: Path) -> dict:
    """The owner record a lock file holds (empty when unreadable or never written)."""
    try:
        return json.loads((build_dir / LOCK_NAME).read_text())
    except (OSError, ValueError):
        return {}


@contextmanager
def build_lock(build_dir: Path) -> Iterator[None]:
    """Hold BUILD_DIR exclusively for the `with` block, or refuse with who holds it."""
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
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        owner = owner_of(build_dir)
        raise InputError(
            f"{build_dir}: another build is running in this directory (pid {owner.get('pid', '?')} "
            f"on {owner.get('host', '?')}, since {owner.get('started', '?')}); wait for it to finish "
            "or choose another --out."
        ) from None
    # Ours now; whatever an earlier (dead) owner wrote is replaced.
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    _held[build_dir] = [fd, 1]
    try:
        yield
    finally:
        _held[build_dir][1] -= 1
        if _held[build_dir][1] == 0:
            del _held[build_dir]
            os.close(fd)  # releases the flock; the file stays as a record of the last owner
