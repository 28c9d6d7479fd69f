"""Two builds into one directory: the second refuses, naming the first; a dead owner's lock is stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipeline.errors import InputError
from pipeline.lock import LOCK_NAME, build_lock, owner_of
from tests.conftest import SAMPLE
from tests.test_cli import assert_one_line_error, build

HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pipeline.lock import build_lock
    with build_lock(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def other_build(tmp_path):
    """A second process that holds the lock of tmp_path/b until the test ends."""
    out = tmp_path / "b"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield out, holder.pid
    holder.kill()
    holder.wait()


def test_second_build_into_a_busy_directory_refuses_and_names_the_owner(other_build):
    out, pid = other_build
    result = build(SAMPLE, out)
    assert_one_line_error(result, str(out), f"pid {pid}", "another build is running")
    assert not (out / "input").exists(), "the refused build must not write into the directory"


def test_lock_in_another_process_refuses_in_process_too(other_build):
    out, pid = other_build
    with pytest.raises(InputError, match=f"pid {pid}"), build_lock(out):
        pass


def test_lock_of_a_killed_build_is_taken_over(other_build):
    out, pid = other_build
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert owner_of(out)["pid"] == pid  # the file is still there, naming the dead owner
    with build_lock(out):
        assert owner_of(out)["pid"] == os.getpid()


def test_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with build_lock(tmp_path):
        with build_lock(tmp_path):  # the CLI holds it, then the flow takes it again
            pass
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pipeline.lock import build_lock\nwith build_lock(sys.argv[1]): pass",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
        )
        assert probe.returncode != 0 and "another build is running" in probe.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pipeline.lock import build_lock\nwith build_lock(sys.argv[1]): pass",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != os.getpid()  # the probe owned it last
