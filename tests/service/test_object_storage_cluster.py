"""`corpus build --dask-address ... --out s3://...`: Dask workers started from another folder
(their own working directory, home, temporary and cache folders) read and write the build in the
bucket themselves (pipeline/remote_jobs.py); the outputs equal a local build's and a rerun resumes
from the bucket. moto's S3 server on loopback stands in for the bucket, which cannot exist here;
Dask, s3fs, the CLI and the build are the real thing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys

import dask
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from distributed import Client, LocalCluster

from flows.cluster import DaskShards, DaskTasks
from pipeline import remote, steps
from pipeline.config import BuildConfig, DedupConfig, QualityConfig
from pipeline.dedup.distributed import find_duplicates_distributed, link, plan
from pipeline.dedup.methods import find_duplicates
from pipeline.dedup.stage import cluster
from pipeline.errors import BuildError
from pipeline.jobs import ShardJob, run_job
from pipeline.manifest import documents_step
from pipeline.remote_jobs import BuildStore, run_at_url
from pipeline.shards import prepare_inputs
from pipeline.sources import build_sources
from pipeline.stage import BuildContext, ShardContext
from pipeline.stages import DEDUP, EXTRACT, registry
from tests.conftest import running
from tests.extract.warcs import DOLMA_WARCS
from tests.service.conftest import FAST_CONFIG
from tests.service.dying_tasks import Dying
from tests.service.test_remote import corpus, s3, s3_endpoint, s3_env  # noqa: F401 (s3_endpoint: a fixture)
from tests.test_build_flow import output_digests

STAGES = "dedup,tokenizer"  # shard jobs of both kinds, both global steps, every output type


@pytest.fixture
def cluster_elsewhere(tmp_path, s3_endpoint):  # noqa: F811 (the fixture imported above)
    """A Dask scheduler and two worker processes started in a folder of their own, with their
    own home, temporary and cache folders: nothing of the flow's is at their paths."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "tmp").mkdir(parents=True)
    env = s3_env(
        s3_endpoint, HOME=str(elsewhere), TMPDIR=str(elsewhere / "tmp"), CORPUS_CACHE_DIR=str(elsewhere / "cache")
    )
    scheduler_file = elsewhere / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    with (
        running(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
            + ["--scheduler-file", str(scheduler_file)],
            env,
            tmp_path / "scheduler.log",
            scheduler_file.exists,
            60,
            cwd=elsewhere,
        ),
        running(
            [*dask, "worker", "--nworkers", "2", "--nthreads", "1", "--no-dashboard"]
            + ["--scheduler-file", str(scheduler_file)],
            env,
            tmp_path / "workers.log",
            lambda: True,
            60,
            cwd=elsewhere,
        ),
        Client(scheduler_file=str(scheduler_file), timeout=60) as client,
    ):
        client.wait_for_workers(2, timeout=60)
        yield client, elsewhere


def listing(fs, url: str) -> dict[str, tuple]:
    root = url.removeprefix("s3://")
    return {
        path: (info["size"], info.get("ETag"), info.get("LastModified"))
        for path, info in fs.find(root, detail=True).items()
    }


def bucket_build(endpoint: str, path: str, small_input, tmp_path, stages: str) -> tuple:
    """A new bucket for the build at s3://`path`: the bucket's filesystem, the URL, the flow's
    environment (its own cache) and the build's arguments (FAST_CONFIG, `stages`) less --out."""
    fs = s3(endpoint)
    fs.mkdir(path.split("/")[0])
    config = tmp_path / "config.yaml"
    config.write_text(FAST_CONFIG)
    env = s3_env(endpoint, CORPUS_CACHE_DIR=str(tmp_path / "flow-cache"))
    return fs, f"s3://{path}", env, ["--input", str(small_input), "--config", str(config), "--stages", stages]


@pytest.mark.slow
def test_workers_started_elsewhere_build_at_an_s3_url_with_the_local_builds_outputs(
    small_input,
    tmp_path,
    s3_endpoint,  # noqa: F811
    cluster_elsewhere,
    monkeypatch,
):
    """Shard jobs, build-wide steps (the clustering, the tokenizer, the report) and the
    clustering's tasks all on the workers; the flow handles metadata only."""
    client, elsewhere = cluster_elsewhere
    fs, url, env, args = bucket_build(
        s3_endpoint, "cluster-bucket/builds/b1", small_input, tmp_path, f"{STAGES},report"
    )
    args += ["--set", "dedup.containment=false", "--set", "dedup.cluster_partition_rows=40"]
    local = corpus(env, "build", *args, "--out", str(tmp_path / "local"), "--workers", "2")
    assert local.returncode == 0, local.stderr

    on_cluster = corpus(env, "build", *args, "--out", url, "--dask-address", client.scheduler.address)

    assert on_cluster.returncode == 0, on_cluster.stderr
    ran = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
    shard_work = {"dedup_signatures-part", "dedup-part", "encode-part", "align-schemas"}
    steps_there = {"dedup_clusters", "tokenizer_train", "mixture", "tokenizer_summary", "report"}
    clustering_tasks = {"dedup_clusters-scatter", "dedup_clusters-link", "dedup_clusters-decide"}
    assert shard_work | steps_there | clustering_tasks <= ran, ran
    fs.get(url.removeprefix("s3://"), str(tmp_path / "fetched"), recursive=True)
    digests = output_digests(tmp_path / "fetched")
    assert any(name.endswith(".bin") for name in digests) and "tokenizer/tokenizer.json" in digests
    assert any(name.startswith("dedup/_decisions/by_shard/") for name in digests)
    assert not any("_cluster_work" in name for name in digests)  # the tasks' files are gone from the bucket
    assert digests == output_digests(tmp_path / "local")
    assert not list((elsewhere / "tmp").glob("corpus-job-*"))  # the workers' scratch folders are gone
    steps = json.loads((tmp_path / "fetched" / "manifest.json").read_text())["build_steps"]
    workers = set(client.scheduler_info()["workers"])
    assert {"dedup_clusters", "tokenizer_sample_plan", "tokenizer_train", "mixture"} <= set(steps)
    assert all(step["ran_on"] in workers and step["peak_rss_bytes"] > 2**20 for step in steps.values()), steps
    # The flow's working copy: records, summaries, the manifest and the report's page; no document,
    # no token shard, no build step's artifact.
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "flow-cache"))
    copy = remote.working_dir(url)
    assert (copy / "report" / "stats.json").exists() and (copy / "tokens" / "_stage.json").exists()
    assert not [p for p in copy.rglob("*") if p.suffix in (".parquet", ".bin", ".npy") or p.name == "tokenizer.json"]
    # A rerun (a fresh working copy: another flow machine) resumes from the bucket alone: no
    # object there is written again.
    before = listing(fs, url)
    again_env = s3_env(s3_endpoint, CORPUS_CACHE_DIR=str(tmp_path / "another-flow-cache"))
    again = corpus(again_env, "build", *args, "--out", url, "--dask-address", client.scheduler.address)
    assert again.returncode == 0, again.stderr
    after = listing(fs, url)
    outputs = [p for p in before if "/_done/" in p or p.endswith((".parquet", ".bin", ".npy", "tokenizer.json"))]
    rewritten = [p for p in outputs if after[p] != before[p]]
    assert len(outputs) > 20 and not rewritten, rewritten


def test_a_shard_job_reads_and_writes_only_the_bucket_and_resumes_there(
    small_input,
    tmp_path,
    s3_endpoint,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint, "key": "test", "secret": "test"})
    fs = s3(s3_endpoint)
    fs.mkdir("job-bucket")
    url, flow = "s3://job-bucket/b1", tmp_path / "flow-copy"
    shard = flow / "input" / "part-00000.parquet"
    shard.parent.mkdir(parents=True)
    shutil.copy(small_input / "part-00000.parquet", shard)
    stage = registry.get("quality")
    config = QualityConfig.model_validate({"lingua": {"enabled": False}, "perplexity": {"enabled": False}})
    context = ShardContext(config, stage="quality", shard="part-00000", out_dir=flow / "quality")
    job = ShardJob(documents_step(stage), shard, context, fingerprint="f1", reasons=stage.reasons)
    store = BuildStore(url, flow)
    task = store.job(job)  # publishes the input shard in the bucket
    shutil.rmtree(flow)  # nothing of the flow's is on disk any more

    record = store.received(job, run_at_url(task))

    assert (
        not record["skipped"]
        and record["docs_kept"] + record["docs_removed"]
        == pq.read_metadata(small_input / "part-00000.parquet").num_rows
    )
    assert record["input"] == str(shard)  # the record names the input as the flow does
    kept = fs.cat_file("job-bucket/b1/quality/part-00000.parquet")
    assert store.hash_of(flow / "quality" / "part-00000.parquet") == hashlib.sha256(kept).hexdigest()
    done = json.loads(fs.cat_file("job-bucket/b1/quality/_done/quality-part-00000.json"))
    assert done["outputs"] == ["part-00000.parquet", "removed/part-00000.parquet"] and done["fingerprint"] == "f1"
    assert not flow.exists()
    again = run_at_url(task)
    assert again["skipped"] and again["sha256"]["part-00000.parquet"] == hashlib.sha256(kept).hexdigest()
    changed = dataclasses.replace(task, job=dataclasses.replace(job, fingerprint="f2"))
    assert not run_at_url(changed)["skipped"]  # another fingerprint: the job runs again


def test_raw_web_parts_are_extracted_from_the_bucket_with_the_local_builds_bytes(
    tmp_path,
    s3_endpoint,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint, "key": "test", "secret": "test"})
    fs = s3(s3_endpoint)
    fs.mkdir("raw-bucket")
    warcs = tmp_path / "warcs"
    warcs.mkdir()
    shutil.copy(DOLMA_WARCS[0], warcs)
    cfg = BuildConfig.model_validate({"extract": {"drop_duplicate_urls": False, "max_docs_per_domain": 0}})

    def jobs(build_dir):
        """The extract step's jobs, the archive cut into parts that name it by its path here."""
        inputs = prepare_inputs(str(warcs), build_dir / "input", 60_000)
        ctx = steps.build_context(build_dir, EXTRACT, inputs, cfg, build_sources(cfg, str(warcs)))
        return steps.shard_jobs(EXTRACT, EXTRACT.steps[-1], ctx)

    local = [run_job(job) for job in jobs(tmp_path / "local")]
    store = BuildStore("s3://raw-bucket/b1", tmp_path / "flow")
    tasks = [store.job(job) for job in jobs(tmp_path / "flow")]  # publishes the parts and the archive
    shutil.rmtree(tmp_path / "flow")
    shutil.rmtree(warcs)  # the workers' only copy of the archive is the bucket's

    remote = [run_at_url(task) for task in tasks]

    assert len(local) > 2 and [r["docs_kept"] for r in remote] == [r["docs_kept"] for r in local]
    for record in local:
        for output in record["outputs"]:
            assert (
                fs.cat_file(f"raw-bucket/b1/extract/{output}") == (tmp_path / "local" / "extract" / output).read_bytes()
            )


@pytest.mark.slow
def test_a_scheduled_build_into_the_bucket_runs_its_shard_jobs_there_as_the_compose_service_does(
    small_input,
    tmp_path,
    s3_endpoint,  # noqa: F811
    cluster_elsewhere,
):
    """docker-compose.yml's shape: `service.out` in the bucket, Dask workers sharing only it; the
    build equals the same scheduled build on one machine."""
    client, _ = cluster_elsewhere
    fs = s3(s3_endpoint)
    fs.mkdir("scheduled-bucket")
    env = s3_env(s3_endpoint, CORPUS_CACHE_DIR=str(tmp_path / "flow-cache"))
    env.pop("PREFECT_API_URL", None)  # its own embedded API, as `corpus` runs have

    def scheduled(out: str, **config) -> dict:
        script = (
            "import json, sys; from flows.scheduled import scheduled_build; "
            "print(json.dumps(scheduled_build(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4].split(','))))"
        )
        config = json.dumps(yaml.safe_load(FAST_CONFIG) | config)
        command = [sys.executable, "-c", script, str(small_input), out, config, STAGES]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])

    assert scheduled(str(tmp_path / "local"))["status"] == "built"
    url = "s3://scheduled-bucket/builds/scheduled"
    assert scheduled(url, dask_address=client.scheduler.address)["status"] == "built"

    ran = set(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))
    assert {"dedup-part", "encode-part", "align-schemas"} <= ran, ran  # the workers wrote in the bucket
    fs.get(f"{url.removeprefix('s3://')}/build-0001", str(tmp_path / "fetched"), recursive=True)
    digests = output_digests(tmp_path / "fetched")
    assert "tokenizer/tokenizer.json" in digests and digests == output_digests(tmp_path / "local" / "build-0001")
    # The clustering ran on a worker, which appended the build's part to the root's dedup index.
    assert any(path.endswith("/part-00000.parquet") for path in fs.find(f"{url.removeprefix('s3://')}/dedup-index"))


@pytest.mark.slow
def test_shard_work_sends_the_flow_only_records_the_documents_stay_in_the_bucket(
    small_input,
    tmp_path,
    s3_endpoint,  # noqa: F811
    cluster_elsewhere,
    monkeypatch,
):
    client, _ = cluster_elsewhere
    # FAST_CONFIG has no perplexity model: the quality stage is shard work only.
    fs, url, env, args = bucket_build(
        s3_endpoint, "shards-bucket/builds/quality-only", small_input, tmp_path, "quality"
    )

    done = corpus(env, "build", *args, "--out", url, "--dask-address", client.scheduler.address)

    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "flow-cache"))
    copy = remote.working_dir(url)
    in_bucket = {path.rsplit("/", 1)[-1] for path in fs.find(url.removeprefix("s3://") + "/quality")}
    assert {"part-00000.parquet", "part-00001.parquet"} <= in_bucket
    assert (copy / "quality" / "_stage.json").exists()  # the flow summed the records it got back
    assert not list(copy.rglob("*.parquet"))  # and never held a document


def dedup_context(build_dir, small_input, run) -> BuildContext:
    """The dedup clustering step's context once the signature jobs ran, each by `run`."""
    cfg = BuildConfig()
    inputs = prepare_inputs(str(small_input), build_dir / "input")
    ctx = steps.build_context(build_dir, DEDUP, inputs, cfg, build_sources(cfg, str(small_input)))
    ctx.records["dedup_signatures"] = [run(job) for job in steps.shard_jobs(DEDUP, DEDUP.steps[0], ctx)]
    return ctx


@pytest.fixture
def clustering_at_url(small_input, tmp_path, s3_endpoint, monkeypatch):  # noqa: F811
    """The clustering step's context in a flow's working copy, its signatures written in the
    bucket by their jobs (the copy holds none); a cluster of two worker processes, started after
    the bucket's settings and a cache of their own are in the environment; the bucket's filesystem and name."""
    for key, value in s3_env(s3_endpoint, CORPUS_CACHE_DIR=str(tmp_path / "workers-cache")).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint, "key": "test", "secret": "test"})
    fs = s3(s3_endpoint)
    bucket = f"step-bucket-{hashlib.sha256(str(tmp_path).encode()).hexdigest()[:8]}"  # one per test
    fs.mkdir(bucket)
    store = BuildStore(f"s3://{bucket}/b1", tmp_path / "flow-copy")
    ctx = dedup_context(store.root, small_input, lambda job: store.received(job, run_at_url(store.job(job))))
    assert not list(store.root.rglob("*.parquet"))
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 1}),  # a task may be lost once
        LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as workers,
        Client(workers, set_as_default=False) as client,
    ):
        yield DaskShards(client, workers.scheduler_address, 60, print, store), ctx, fs, bucket


def test_a_build_step_lost_with_its_worker_is_run_again_on_another_from_the_bucket(
    small_input, tmp_path, clustering_at_url
):
    shards, ctx, fs, bucket = clustering_at_url
    marker = tmp_path / "died-once"

    record = shards.step("dedup_clusters", Dying(cluster, str(marker)), ctx)

    assert marker.exists()  # the first worker to take the step died
    assert record["ran_on"] in shards.client.nthreads() and not record["skipped"]
    local = dedup_context(tmp_path / "local", small_input, run_job)
    local_record = cluster(local)
    decisions = fs.cat_file(f"{bucket}/b1/dedup/_decisions/decisions.parquet")
    assert decisions == (tmp_path / "local" / local_record["artifact"]).read_bytes()
    assert shards.step("dedup_clusters", cluster, ctx)["skipped"]  # a rerun finds it done in the bucket


def test_a_build_step_that_kills_every_worker_fails_in_one_line_naming_the_step(clustering_at_url):
    shards, ctx, *_ = clustering_at_url

    with pytest.raises(BuildError) as failed:
        shards.step("dedup_clusters", Dying(cluster, ""), ctx)

    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("dedup_clusters: the build step killed 2 Dask workers in a row"), message


def test_clustering_tasks_at_the_url_survive_a_lost_worker_and_decide_as_one_process(tmp_path, clustering_at_url):
    """The tasks of a URL build's clustering: work folder, signatures and decisions in the bucket."""
    shards, ctx, fs, bucket = clustering_at_url
    url = f"s3://{bucket}/b1"
    files = [f"{url}/dedup/{record['outputs'][0]}" for record in ctx.records["dedup_signatures"]]
    outs = [f"{url}/decisions/{i}.parquet" for i in range(len(files))]
    cfg = DedupConfig(containment=False, cluster_partition_rows=40)
    tasks, marker = DaskTasks(shards.address, 60, "dedup_clusters"), tmp_path / "died-once"

    def run(fn, items):  # the first `link` task to start kills its worker
        return tasks.map(Dying(fn, str(marker)) if fn is link else fn, items)

    find_duplicates_distributed(plan(files, cfg, [], f"{url}/work"), outs, run)

    assert marker.exists()
    decided = pa.concat_tables(pq.read_table(fs.open(out.removeprefix("s3://"))) for out in outs).sort_by("id")
    local = [tmp_path / "signatures" / f"{i}.parquet" for i in range(len(files))]
    for file, path in zip(files, local):
        fs.get(file.removeprefix("s3://"), str(path))
    assert decided.num_rows == 151 and decided.equals(find_duplicates(local, cfg))
