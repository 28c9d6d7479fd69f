"""`corpus ablate` on the command line: a table and a closing note saying which differences
exceed the seed spread; a variant that cannot be made is one line and exit 2, before any training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline.ablate.variants import ABLATIONS
from tests.test_cli import CORPUS, assert_one_line_error, corpus

pytestmark = pytest.mark.slow


def test_ablate_prints_the_variants_and_whether_each_difference_exceeds_the_seed_spread(ablation_build: Path):
    args = ["ablate", str(ablation_build), "--variants", "raw,quality", "--tokens", "1024", "--seeds", "2"]
    # Four short runs, but each worker starts torch: minutes on a busy shared machine.
    result = subprocess.run([*CORPUS, *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "validation bits per byte" in result.stdout and "load average" in result.stdout
    assert "quality - raw:" in result.stdout and "the seed spread" in result.stdout
    results = json.loads((ablation_build / ABLATIONS / "results.json").read_text())
    assert results["order"] == ["raw", "quality"] and results["tokens"] == 1024


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--variant", "v=quality:gopher.min_words=lots"], ["v", "min_words"]),
        (["--variant", "nostage"], ["NAME=STAGE"]),
        (["--variants", "raw,nothing"], ["nothing"]),
    ],
)
def test_a_bad_variant_is_one_line_and_exit_2(ablation_build: Path, args, needles):
    assert_one_line_error(corpus("ablate", str(ablation_build), *args), *needles)


def test_ablate_without_a_build_says_what_to_pass(tmp_path):
    assert_one_line_error(corpus("ablate", str(tmp_path)), "manifest", "corpus build")
