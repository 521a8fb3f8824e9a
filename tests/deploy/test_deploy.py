"""Deployment files: Dockerfiles, cluster start-up scripts, GPU discovery, Spark properties."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline.deploy.spark_properties import (
    PropertiesError,
    format_gcloud,
    load_properties,
    render,
)

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile", "gpu": DOCKER / "Dockerfile.gpu"}
SERVERLESS = DOCKER / "Dockerfile.serverless"
INSTALL_SCRIPTS = [DOCKER / "dataproc-init.sh", DOCKER / "emr-bootstrap.sh"]
DISCOVERY = DOCKER / "spark-gpu-discovery.sh"
CLUSTER_CONFS = [ROOT / "conf" / "dataproc.yaml", ROOT / "conf" / "emr.yaml"]
JOB = ROOT / "jobs" / "spark_properties.py"

APP_HOME = PurePosixPath("/opt/lottery-spark")
VENV_PYTHON = str(APP_HOME / "venv" / "bin" / "python")
DISCOVERY_PATH = str(APP_HOME / "bin" / "spark-gpu-discovery.sh")
# pip options that would bring in versions from somewhere other than the command line.
FORBIDDEN_PIP_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable"}


# --- helpers -------------------------------------------------------------------------------


def project_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    texts = data["project"]["dependencies"] + data["project"]["optional-dependencies"]["cloud"]
    reqs = [Requirement(text) for text in texts]
    return {canonicalize_name(req.name): req for req in reqs}


def parse_dockerfile(path: Path) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [item["value"] for item in parser.structure if item["instruction"] == name]


def shell_commands(run_value: str) -> list[list[str]]:
    """The simple commands of a RUN line, as token lists."""
    return [shlex.split(part) for part in re.split(r"&&|\|\||;", run_value) if part.strip()]


def pip_install_args(parser: DockerfileParser) -> list[list[str]]:
    """Arguments after ``pip install`` for every pip install in the Dockerfile."""
    found = []
    for run in instructions(parser, "RUN"):
        for tokens in shell_commands(run):
            for i, token in enumerate(tokens[:-1]):
                if os.path.basename(token) in ("pip", "pip3") and tokens[i + 1] == "install":
                    found.append(tokens[i + 2 :])
    return found


def apt_packages(parser: DockerfileParser) -> set[str]:
    packages: set[str] = set()
    for run in instructions(parser, "RUN"):
        for tokens in shell_commands(run):
            if tokens[:1] in (["apt-get"], ["apt"]) and "install" in tokens:
                packages.update(t for t in tokens[tokens.index("install") + 1 :] if t[0] != "-")
    return packages


def dockerfile_pins(parser: DockerfileParser) -> list[str]:
    pins = []
    for args in pip_install_args(parser):
        assert not FORBIDDEN_PIP_OPTIONS & set(args), f"pip install {args}: list pins inline"
        pins += [a for a in args if not a.startswith("-") and a != "."]
    return pins


def script_pins(path: Path) -> list[str]:
    match = re.search(r"^readonly PINS=\(\n(.*?)^\)", path.read_text(), re.M | re.S)
    assert match, f"{path.name}: no PINS=( ... ) array"
    return match.group(1).split()


def check_pins(pins: list[str], where: str, absent: frozenset[str] = frozenset()
               ) -> dict[str, Requirement]:
    """Every pin is ``==``, satisfies pyproject, equals its exact pins; all deps covered
    but ``absent`` (which must not be pinned)."""
    project = project_requirements()
    checked: dict[str, Requirement] = {}
    for text in pins:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in project, f"{where}: {req.name} is not a dependency in pyproject.toml"
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{where}: pin {text} with =="
        version = specs[0].version
        wanted = project[name]
        assert wanted.specifier.contains(version, prereleases=True), (
            f"{where}: {text} is outside pyproject's {wanted}"
        )
        for spec in wanted.specifier:
            if spec.operator == "==":
                assert version == spec.version, f"{where}: {text} but pyproject pins {wanted}"
        assert name not in checked, f"{where}: {req.name} installed twice"
        checked[name] = req
    missing = sorted(set(project) - set(checked) - absent)
    assert not missing, f"{where}: dependencies not installed: {missing}"
    assert not absent & set(checked), f"{where}: installs {sorted(absent & set(checked))}"
    return checked


def versions(reqs: dict[str, Requirement]) -> dict[str, str]:
    return {name: str(req.specifier) for name, req in reqs.items()}


# --- Dockerfiles ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_dockerfile_base_java_python_and_user(variant: str) -> None:
    parser = parse_dockerfile(DOCKERFILES[variant])
    assert parser.baseimage, "no FROM"
    apt = apt_packages(parser)
    assert "openjdk-17-jre-headless" in apt
    assert "17" in parser.envs["JAVA_HOME"]
    assert parser.baseimage.startswith("python:3.11") or "python3.11" in apt
    runs = " ".join(instructions(parser, "RUN"))
    assert f"python3.11 -m venv {APP_HOME / 'venv'}" in runs
    assert parser.envs["PYSPARK_PYTHON"] == VENV_PYTHON
    assert parser.envs["PYSPARK_DRIVER_PYTHON"] == VENV_PYTHON
    assert instructions(parser, "WORKDIR")[-1] == str(APP_HOME)
    users = instructions(parser, "USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_dockerfile_pins_match_pyproject() -> None:
    cpu = check_pins(dockerfile_pins(parse_dockerfile(DOCKERFILES["cpu"])), "Dockerfile")
    gpu = check_pins(dockerfile_pins(parse_dockerfile(DOCKERFILES["gpu"])), "Dockerfile.gpu")
    assert versions(cpu) == versions(gpu)
    assert all(not req.extras for req in cpu.values())
    assert gpu["tensorflow"].extras == {"and-cuda"}
    assert all(not req.extras for name, req in gpu.items() if name != "tensorflow")
    assert parse_dockerfile(DOCKERFILES["gpu"]).baseimage.startswith("nvidia/cuda:12.")


@pytest.mark.parametrize("variant", sorted(DOCKERFILES))
def test_dockerfile_installs_the_project_and_copies_existing_files(variant: str) -> None:
    parser = parse_dockerfile(DOCKERFILES[variant])
    assert any(args[-1:] == ["."] for args in pip_install_args(parser)), "project not installed"
    destinations = {}
    for value in instructions(parser, "COPY"):
        tokens = [t for t in shlex.split(value) if not t.startswith("--")]
        *sources, dest = tokens
        for source in sources:
            if source == "README.md" and not (ROOT / source).exists():
                continue  # written by another change; pyproject needs it at build time
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        destinations[sources[-1]] = APP_HOME / dest
    assert str(destinations["docker/spark-gpu-discovery.sh"]) == DISCOVERY_PATH


# --- cluster scripts -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DOCKER.glob("*.sh")), ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(path: Path) -> None:
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.access(path, os.X_OK), f"{path.name} is not executable (chmod +x)"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text


@pytest.mark.parametrize("path", INSTALL_SCRIPTS, ids=lambda p: p.name)
def test_install_scripts_pin_what_the_image_pins(path: Path) -> None:
    image = check_pins(dockerfile_pins(parse_dockerfile(DOCKERFILES["cpu"])), "Dockerfile")
    assert versions(check_pins(script_pins(path), path.name)) == versions(image)
    text = path.read_text()
    for line in text.splitlines():
        if re.search(r"pip\"? install", line):
            # "${pins[@]}": PINS as node_pins gives them for this node (docker/node-pins.sh)
            assert line.rstrip().endswith(('"${pins[@]}"', '"${APP_HOME}"')), line
    assert str(APP_HOME) in text and "spark-gpu-discovery.sh" in text


# --- GPU discovery script ------------------------------------------------------------------


def _discover(tmp_path: Path, nvidia_smi: str | None) -> subprocess.CompletedProcess:
    """Run the discovery script with a PATH holding only bash (and a fake nvidia-smi)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "bash").symlink_to(shutil.which("bash"))
    if nvidia_smi is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(nvidia_smi)
        fake.chmod(0o755)
    return subprocess.run(
        [str(DISCOVERY)], capture_output=True, text=True, env={"PATH": str(bin_dir)}, timeout=30
    )


def _fake_smi(output: str, status: int = 0) -> str:
    expected = "--query-gpu=index --format=csv,noheader"
    return f'#!/bin/sh\n[ "$*" = "{expected}" ] || exit 2\nprintf \'{output}\'\nexit {status}\n'


def test_discovery_without_nvidia_smi_reports_no_gpus(tmp_path: Path) -> None:
    proc = _discover(tmp_path, None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"name": "gpu", "addresses": []}


@pytest.mark.parametrize("output", ["0\\n1\\n", "0\\n\\n 1 \\n"])
def test_discovery_lists_nvidia_smi_indices(tmp_path: Path, output: str) -> None:
    proc = _discover(tmp_path, _fake_smi(output))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"name": "gpu", "addresses": ["0", "1"]}


def test_discovery_fails_when_nvidia_smi_fails(tmp_path: Path) -> None:
    proc = _discover(tmp_path, _fake_smi("", status=9))
    assert proc.returncode != 0


# --- Spark properties ----------------------------------------------------------------------


def parse_gcloud(arg: str) -> dict[str, str]:
    """Inverse of gcloud's ``--properties=[^D^]k=v<D>k=v`` list syntax."""
    prefix = "--properties="
    assert arg.startswith(prefix)
    body, delim = arg[len(prefix) :], ","
    if body.startswith("^"):
        delim, body = body[1:].split("^", 1)
    return dict(pair.split("=", 1) for pair in body.split(delim))


def conf_pairs(args: list[str]) -> dict[str, str]:
    assert args[0::2] == ["--conf"] * (len(args) // 2) and len(args) % 2 == 0
    return dict(pair.split("=", 1) for pair in args[1::2])


@pytest.mark.parametrize("path", CLUSTER_CONFS, ids=lambda p: p.name)
def test_cluster_properties(path: Path) -> None:
    props = load_properties(path)
    for key in (
        "spark.executor.memory",
        "spark.executor.memoryOverhead",
        "spark.driver.memory",
        "spark.task.maxFailures",
        "spark.executor.instances",
    ):
        assert key in props
    assert props["spark.dynamicAllocation.enabled"] == "false"
    assert props["spark.sql.execution.arrow.pyspark.enabled"] == "true"
    assert props["spark.pyspark.python"] == VENV_PYTHON
    assert props["spark.pyspark.driver.python"] == VENV_PYTHON
    assert props["spark.executor.resource.gpu.discoveryScript"] == DISCOVERY_PATH
    # sizes against the nodes and worker reuse: tests/deploy/test_cluster_sizes.py


@pytest.mark.parametrize("path", CLUSTER_CONFS, ids=lambda p: p.name)
def test_formats_round_trip(path: Path) -> None:
    props = load_properties(path)
    assert conf_pairs(shlex.split(render(path))) == props
    assert conf_pairs(json.loads(render(path, "emr"))) == props
    gcloud = render(path, "gcloud")
    assert parse_gcloud(gcloud) == props
    assert list(parse_gcloud(gcloud)) == list(props)  # file order is kept


def test_gcloud_switches_delimiter_for_commas(tmp_path: Path) -> None:
    path = CLUSTER_CONFS[0]
    extra = "spark.driver.extraJavaOptions=-Da=1,2 -Db=x"
    arg = render(path, "gcloud", overrides=[extra])
    assert arg.startswith("--properties=^#^")
    expected = {**load_properties(path), "spark.driver.extraJavaOptions": "-Da=1,2 -Db=x"}
    assert parse_gcloud(arg) == expected
    assert parse_gcloud(format_gcloud({"spark.a": "1,#", "spark.b": "2"})) == {
        "spark.a": "1,#",
        "spark.b": "2",
    }
    with pytest.raises(PropertiesError, match="delimiter"):
        format_gcloud({"spark.a": ",#@|~!%;:"})
    # spaces survive spark-submit quoting
    args = shlex.split(render(path, overrides=[extra]))
    assert conf_pairs(args)["spark.driver.extraJavaOptions"] == "-Da=1,2 -Db=x"


def test_no_gpu_drops_only_gpu_keys() -> None:
    path = CLUSTER_CONFS[1]
    full = load_properties(path)
    cpu = conf_pairs(json.loads(render(path, "emr", gpu=False)))
    assert not [k for k in cpu if ".resource.gpu." in k]
    assert {k: v for k, v in full.items() if ".resource.gpu." not in k} == cpu


def test_scalars_become_spark_strings(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "spark_properties:\n  spark.a: true\n  spark.b: 4\n  spark.c: 0.5\n  spark.d: 8g\n"
    )
    assert load_properties(path) == {
        "spark.a": "true",
        "spark.b": "4",
        "spark.c": "0.5",
        "spark.d": "8g",
    }
    assert conf_pairs(shlex.split(render(path, overrides=["spark.b=6", "spark.e=false"]))) == {
        "spark.a": "true",
        "spark.b": "6",
        "spark.c": "0.5",
        "spark.d": "8g",
        "spark.e": "false",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spark:\n  executor: {}\n", "top-level 'spark_properties:' mapping"),
        ("- a\n- b\n", "top-level 'spark_properties:' mapping"),
        ("", "top-level 'spark_properties:' mapping"),
        ("spark_properties: 3\n", "non-empty mapping"),
        ("spark_properties: {}\n", "non-empty mapping"),
        ("spark_properties:\n  spark.a: 1\nother: 2\n", "unexpected top-level keys"),
        ("spark_properties:\n  spark.a: [1, 2]\n", "spark.a: value must be a string"),
        ("spark_properties:\n  spark.a: {b: 1}\n", "spark.a: value must be a string"),
        ("spark_properties:\n  spark.a:\n", "spark.a: has no value"),
        ("spark_properties:\n  executor.memory: 4g\n", "not a Spark property name"),
        ("spark_properties:\n  spark.a b: 4g\n", "not a Spark property name"),
        ("spark_properties: [\n", "not valid YAML"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PropertiesError, match=re.escape(message)) as info:
        load_properties(path)
    assert str(path) in str(info.value)


def test_missing_file_unknown_format_and_bad_override(tmp_path: Path) -> None:
    with pytest.raises(PropertiesError, match="does not exist"):
        load_properties(tmp_path / "nope.yaml")
    with pytest.raises(PropertiesError, match="unknown format 'yaml'"):
        render(CLUSTER_CONFS[0], "yaml")
    with pytest.raises(PropertiesError, match="key=value"):
        render(CLUSTER_CONFS[0], overrides=["spark.a"])
    with pytest.raises(PropertiesError, match="--set: spark.a: value must be a string"):
        render(CLUSTER_CONFS[0], overrides=["spark.a=[1]"])


def test_command_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(JOB), *args],
            capture_output=True,
            text=True,
            cwd=str(ROOT),
            timeout=60,
        )

    ok = run("conf/dataproc.yaml", "--format", "gcloud", "--no-gpu")
    assert ok.returncode == 0, ok.stderr
    props = parse_gcloud(ok.stdout.strip())
    assert props["spark.task.cpus"] and "spark.executor.resource.gpu.amount" not in props

    bad = run(str(tmp_path / "missing.yaml"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("spark_properties: error: properties file")


@pytest.mark.parametrize("gpu", [True, False], ids=["gpu-node", "cpu-node"])
def test_gpu_nodes_install_tensorflow_with_cuda(tmp_path: Path, gpu: bool) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    if gpu:
        smi = fake_bin / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho 'GPU 0: Tesla T4 (UUID: GPU-0)'\n")
        smi.chmod(0o755)
    helper = DOCKER / "node-pins.sh"
    proc = subprocess.run(
        ["bash", "-c", f"source {helper} && node_pins tensorflow==2.19.1 numpy==1.26.4"],
        env={"PATH": f"{fake_bin}:/usr/bin:/bin"}, capture_output=True, text=True, check=True)
    tensorflow = "tensorflow[and-cuda]==2.19.1" if gpu else "tensorflow==2.19.1"
    assert proc.stdout.splitlines() == [tensorflow, "numpy==1.26.4"]


@pytest.mark.parametrize("path", INSTALL_SCRIPTS, ids=lambda p: p.name)
def test_install_scripts_install_the_node_pins(path: Path) -> None:
    text = path.read_text()
    assert 'source "${APP_HOME}/docker/node-pins.sh"' in text
    assert 'node_pins "${PINS[@]}"' in text and '"${pins[@]}"' in text
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_the_serverless_image_has_no_spark_and_no_jdk() -> None:
    from importlib.metadata import requires

    parser = parse_dockerfile(SERVERLESS)
    args = [a for found in pip_install_args(parser) for a in found
            if not a.startswith("-") and a != "."]
    pinned = [a for a in args if "==" in a]
    image = check_pins(pinned, SERVERLESS.name, absent=frozenset({"pyspark"}))
    cpu = versions(check_pins(dockerfile_pins(parse_dockerfile(DOCKERFILES["cpu"])),
                              "Dockerfile"))
    assert versions(image) == {k: v for k, v in cpu.items() if k != "pyspark"}
    # what elephas and petastorm need besides pyspark, installed on their own
    needed = {canonicalize_name(Requirement(r).name) for dist in ("elephas", "petastorm")
              for r in requires(dist) or [] if "extra ==" not in r}
    unpinned = {canonicalize_name(a) for a in args if "==" not in a}
    assert unpinned == needed - set(image) - {"pyspark"}, sorted(needed - set(image))
    assert not {p for p in apt_packages(parser) if "jdk" in p or "jre" in p or "java" in p}
    assert "spark" not in parser.baseimage and "jdk" not in parser.baseimage
    assert not any("JAVA_HOME" in env for env in instructions(parser, "ENV"))
    assert instructions(parser, "USER")[-1] == "1099:1099"
