"""Build directories behind fsspec URLs (pipeline/remote.py): a local working copy synced with
the remote, byte-identical to a local build, resumable from the remote alone.

`memory://` is a real fsspec filesystem but lives in one process, so its builds run in-process
(the flow under Prefect's test harness; worker processes only touch the local copy). The s3://
tests use moto's S3 server on loopback as a stand-in for a cloud bucket, which cannot exist here;
everything else (s3fs, aiobotocore, the CLI, the build) is the real thing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import fsspec
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import remote
from pipeline.errors import InputError
from tests.service.conftest import FAST_CONFIG
from tests.test_build_flow import output_digests

STAGES = ["dedup", "tokenizer"]  # shard jobs of both kinds, both global steps, every output type


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Working copies under the test's own folder, never the user's ~/.cache."""
    monkeypatch.setenv("CORPUS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def memory_url():
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/builds/b1"
    yield url
    fsspec.filesystem("memory").rm(url.removeprefix("memory://"), recursive=True)


def memory_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {path.removeprefix(root + "/"): fs.cat_file(path) for path in fs.find(root)}


@pytest.fixture
def finished_build(small_input, tmp_path):
    """A build-shaped folder of real shards: outputs, a done record, the lock and an input cache."""
    build = tmp_path / "local"
    (build / "dedup" / "_done").mkdir(parents=True)
    (build / "input" / "remote").mkdir(parents=True)
    for i, shard in enumerate(sorted(small_input.glob("*.parquet"))):
        shutil.copy(shard, build / "dedup" / f"part-{i:05d}.parquet")
        (build / "dedup" / "_done" / f"dedup-part-{i:05d}.json").write_text(json.dumps({"fingerprint": str(i)}))
        shutil.copy(shard, build / "input" / "remote" / shard.name)
    (build / ".lock").write_text("{}")
    return build


def test_a_plain_path_and_a_file_url_are_the_build_directory_itself(tmp_path):
    assert remote.working_dir(str(tmp_path / "b")) == tmp_path / "b"
    assert remote.working_dir(f"file://{tmp_path}/b") == tmp_path / "b"
    assert not remote.is_remote(f"file://{tmp_path}/b")


def test_a_url_gets_a_working_copy_in_the_cache_named_after_it(cache_dir):
    work = remote.working_dir("memory://bucket/builds/b1/")
    assert work.parent == cache_dir / "builds" and work.name.startswith("b1-")
    assert work == remote.working_dir("memory://bucket/builds/b1")  # a trailing slash is the same build
    assert work != remote.working_dir("memory://bucket/other/b1")


def test_push_sends_the_outputs_but_not_the_lock_or_the_input_cache(finished_build, memory_url):
    assert remote.push(memory_url, finished_build) == 4
    sent = memory_files(memory_url)
    assert sorted(sent) == [
        "dedup/_done/dedup-part-00000.json",
        "dedup/_done/dedup-part-00001.json",
        "dedup/part-00000.parquet",
        "dedup/part-00001.parquet",
    ]
    assert sent["dedup/part-00001.parquet"] == (finished_build / "dedup" / "part-00001.parquet").read_bytes()


def test_a_scheduled_root_pushes_its_builds_but_not_their_input_caches(finished_build, memory_url):
    """The scheduled build's root (flows/scheduled.py) holds build-NNNN folders, each with its
    own input/ conversion cache, and the root's input-cache/ of fetched input shards."""
    root = finished_build.parent / "root"
    shutil.copytree(finished_build, root / "build-0001")
    shutil.copytree(finished_build / "input", root / "input-cache")
    (root / "dedup-index").mkdir()
    (root / "dedup-index" / "bands.parquet").write_bytes(b"index")
    remote.push(memory_url, root)
    sent = memory_files(memory_url)
    assert "dedup-index/bands.parquet" in sent and "build-0001/dedup/part-00000.parquet" in sent
    assert not [rel for rel in sent if "input" in rel.split("/")[:-1] or rel.startswith("input-cache/")]


def test_a_second_push_sends_only_the_file_whose_bytes_changed(finished_build, memory_url):
    remote.push(memory_url, finished_build)
    shard = finished_build / "dedup" / "part-00000.parquet"
    shard.write_bytes(shard.read_bytes())  # rewritten with the same bytes: a new mtime only
    fewer = pq.read_table(finished_build / "dedup" / "part-00001.parquet").slice(0, 5)
    pq.write_table(fewer, finished_build / "dedup" / "part-00001.parquet")
    assert remote.push(memory_url, finished_build) == 1
    assert pq.read_table(fsspec.open(f"{memory_url}/dedup/part-00001.parquet").open()).num_rows == 5


def test_pull_into_an_empty_copy_fetches_the_build_and_then_nothing(finished_build, memory_url, tmp_path):
    remote.push(memory_url, finished_build)
    copy = tmp_path / "elsewhere"
    assert remote.pull(memory_url, copy) == 4
    assert remote.pull(memory_url, copy) == 0
    for name in ("part-00000.parquet", "part-00001.parquet"):
        assert (copy / "dedup" / name).read_bytes() == (finished_build / "dedup" / name).read_bytes()
    assert remote.push(memory_url, copy) == 0  # what was fetched is not sent back


def test_pull_keeps_local_work_but_takes_what_another_machine_wrote(finished_build, memory_url, tmp_path):
    remote.push(memory_url, finished_build)
    other = tmp_path / "other-machine"
    remote.pull(memory_url, other)
    fewer = pq.read_table(other / "dedup" / "part-00000.parquet").slice(0, 3)
    pq.write_table(fewer, other / "dedup" / "part-00000.parquet")
    remote.push(memory_url, other)
    # Here, meanwhile, a stage rewrote part-00001 and was killed before pushing it.
    unpushed = pq.read_table(finished_build / "dedup" / "part-00001.parquet").slice(0, 7)
    pq.write_table(unpushed, finished_build / "dedup" / "part-00001.parquet")
    assert remote.pull(memory_url, finished_build) == 1
    assert pq.read_table(finished_build / "dedup" / "part-00000.parquet").num_rows == 3
    assert pq.read_table(finished_build / "dedup" / "part-00001.parquet").num_rows == 7


def test_a_folder_of_a_working_copy_knows_its_url_and_other_folders_have_none(finished_build, memory_url, tmp_path):
    remote.push(memory_url, finished_build)
    root = tmp_path / "copy"
    remote.pull(memory_url, root)  # a scheduled build's root: its builds are folders of the copy
    assert remote.url_of(root) == memory_url
    assert remote.url_of(root / "build-0001") == f"{memory_url}/build-0001"
    assert remote.url_of(tmp_path / "plain") is None


def test_an_output_url_without_its_filesystem_package_is_one_line(tmp_path):
    with pytest.raises(InputError, match=r"^gcs://bucket/builds/b1: cannot open this URL \(.*gcsfs") as error:
        remote.working_dir("gcs://bucket/builds/b1")
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_memory_url_build_matches_the_local_build_and_a_fresh_machine_resumes_it(
    small_input, memory_url, tmp_path, cache_dir
):
    from prefect.testing.utilities import prefect_test_harness

    from flows.build import corpus_build

    config = yaml.safe_load(FAST_CONFIG)
    with prefect_test_harness(server_startup_timeout=60):
        corpus_build(str(small_input), str(tmp_path / "local"), config, STAGES, 2)
        corpus_build(str(small_input), memory_url, config, STAGES, 2)
        digests = output_digests(tmp_path / "local")
        assert any(name.endswith(".bin") for name in digests) and "tokenizer/tokenizer.json" in digests
        assert output_digests(remote.working_dir(memory_url)) == digests
        shutil.rmtree(cache_dir)  # a fresh machine: the remote is all there is
        rerun = corpus_build(str(small_input), memory_url, config, STAGES, 2)
    assert all(shard["skipped"] for shard in rerun["stages"]["dedup"]["shards"])
    assert all(shard["skipped"] for shard in rerun["stages"]["tokenizer"]["shards"])
    assert rerun["out"] == memory_url and rerun["build_dir"] == str(remote.working_dir(memory_url))
    assert output_digests(remote.working_dir(memory_url)) == digests
    sent = memory_files(memory_url)
    assert {name: sent.get(name) for name in digests} == {
        name: (tmp_path / "local" / name).read_bytes() for name in digests
    }


# --- s3:// against moto's S3 server on loopback (a stand-in for a cloud bucket) ---------------


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_env(endpoint: str, **extra: str) -> dict[str, str]:
    """Dummy keys and the endpoint, as a deployment sets them; no instance-metadata lookups."""
    return dict(
        os.environ,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        FSSPEC_S3_ENDPOINT_URL=endpoint,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )


def s3(endpoint: str):
    return fsspec.filesystem("s3", endpoint_url=endpoint, key="test", secret="test", skip_instance_cache=True)


def corpus(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`corpus ARGS` in a subprocess on its own embedded Prefect API."""
    env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], env=env, capture_output=True, text=True, timeout=900
    )


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == code and len(lines) == 1, done.stderr
    assert lines[0].startswith("error:") and all(needle in lines[0] for needle in needles), lines[0]


@pytest.mark.slow
def test_s3_input_and_output_build_matches_the_local_build(s3_endpoint, small_input, tmp_path, cache_dir):
    bucket = f"corpus-{uuid.uuid4().hex[:8]}"
    fs = s3(s3_endpoint)
    fs.mkdir(bucket)
    fs.put([str(p) for p in sorted(small_input.glob("*.parquet"))], f"{bucket}/in/")
    config = tmp_path / "config.yaml"
    config.write_text(FAST_CONFIG)
    env = s3_env(s3_endpoint, CORPUS_CACHE_DIR=str(cache_dir))
    common = ("--config", str(config), "--stages", ",".join(STAGES), "--workers", "2")
    local = corpus(env, "build", "--input", str(small_input), "--out", str(tmp_path / "local"), *common)
    assert local.returncode == 0, local.stderr
    url = f"s3://{bucket}/out/"
    done = corpus(env, "build", "--input", f"s3://{bucket}/in/", "--out", url, *common)
    assert done.returncode == 0, done.stderr
    assert f"manifest: s3://{bucket}/out/manifest.json" in done.stdout
    digests = output_digests(tmp_path / "local")
    assert {name: fs.cat_file(f"{bucket}/out/{name}") for name in digests} == {
        name: (tmp_path / "local" / name).read_bytes() for name in digests
    }
    assert not fs.exists(f"{bucket}/out/.lock") and not fs.exists(f"{bucket}/out/input")
    inspected = corpus(env, "inspect", f"s3://{bucket}/out/dedup/part-00000.parquet", "--rows", "1")
    assert inspected.returncode == 0 and "dup_cluster" in inspected.stdout, inspected.stderr


def test_missing_bucket_is_one_line_naming_the_url(s3_endpoint, small_input):
    done = corpus(s3_env(s3_endpoint), "build", "--input", str(small_input), "--out", "s3://no-such-bucket/out")
    assert_one_line_error(done, 2, "s3://no-such-bucket/out: cannot read the build there", "bucket does not exist")


@pytest.mark.parametrize("side", ["input", "out"])
def test_no_credentials_is_one_line_naming_the_url(s3_endpoint, small_input, tmp_path, side):
    env = s3_env(
        s3_endpoint, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none")
    )
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    paths = {"input": str(small_input), "out": str(tmp_path / "b")} | {side: f"s3://some-bucket/{side}"}
    done = corpus(env, "build", "--input", paths["input"], "--out", paths["out"])
    what = "the input" if side == "input" else "the build"
    assert_one_line_error(done, 2, f"s3://some-bucket/{side}: cannot read {what} there", "NoCredentialsError")
