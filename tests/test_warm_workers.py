"""Workers forked from the fork server (flows/workers.py) start with their stages loaded.

Each case runs in a fresh interpreter: the fork server is started once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = textwrap.dedent(
    """
    import json, os, sys
    from concurrent.futures import ProcessPoolExecutor

    from flows import workers
    from pipeline import config
    from pipeline.stage import Ref, Stage
    from pipeline.stages import registry


    def probe(_):
        minhash = sys.modules.get("pipeline.dedup.minhash")
        containment = sys.modules.get("pipeline.dedup.containment")
        return {
            "imported": "pipeline.dedup.stage" in sys.modules,
            # The code-point tables, the LSH bands and the containment ensemble's two parameter sets.
            "tables_built": minhash is not None
            and containment is not None
            and minhash.code_point_tables.cache_info().currsize == 1
            and minhash.lsh_params.cache_info().currsize == 1
            and containment.ensemble_params.cache_info().currsize == 2,
            "set_after_start": os.environ.get("SET_AFTER_START"),
            "sees_warm_ups": workers.WARM_UPS in os.environ,
        }


    if __name__ == "__main__":
        stages = [registry.get("dedup")]
        if sys.argv[1] == "broken":  # json.loads() without its argument raises TypeError
            stages.append(Stage("broken", config.BuildConfig, (), warm=(Ref("json:loads"),)))
        workers.start(stages)
        os.environ["SET_AFTER_START"] = "yes"
        context, environment = workers.context(), dict(os.environ)
        with ProcessPoolExecutor(2, context, initializer=workers.adopt_environment, initargs=(environment,)) as pool:
            found = list(pool.map(probe, range(4)))
        print(json.dumps({"workers": found, "parent_sees_warm_ups": workers.WARM_UPS in os.environ}))
    """
)


def run_probe(tmp_path: Path, variant: str) -> dict:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, str(script), variant], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_workers_start_with_the_stage_modules_imported_and_warmed_up(tmp_path: Path) -> None:
    found = run_probe(tmp_path, "dedup")
    # Imported and built in the server, not by the worker: the probe itself imports neither.
    assert all(w["imported"] and w["tables_built"] for w in found["workers"]), found
    # Workers have the environment of the process that made the pool, not the server's.
    assert all(w["set_after_start"] == "yes" and not w["sees_warm_ups"] for w in found["workers"]), found
    assert not found["parent_sees_warm_ups"]


def test_a_failing_warm_up_leaves_the_workers_working(tmp_path: Path) -> None:
    found = run_probe(tmp_path, "broken")
    assert len(found["workers"]) == 4 and all(w["tables_built"] for w in found["workers"]), found
