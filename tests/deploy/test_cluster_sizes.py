"""conf/dataproc.yaml and conf/emr.yaml fit the nodes their headers name.

The node shapes are the providers' published ones (Compute Engine n1-standard-16 with two
T4s; EC2 g4dn.12xlarge). YARN never offers a container all of a node's memory (the OS, the
NodeManager and the DataNode keep some); the check allows executors at most 80% of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.deploy.spark_properties import load_properties

CONF = Path(__file__).resolve().parents[2] / "conf"
YARN_SHARE = 0.8


@dataclass(frozen=True)
class Node:
    name: str
    vcpus: int
    memory_gib: float
    gpus: int
    count: int


NODES = {
    "dataproc.yaml": Node("n1-standard-16", 16, 60 * 1e9 / 2**30, 2, 2),  # 60 GB
    "emr.yaml": Node("g4dn.12xlarge", 48, 192, 4, 2),
}


def _gib(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([mgt])", value.lower()).groups()
    return float(number) * {"m": 1 / 1024, "g": 1.0, "t": 1024.0}[unit]


@pytest.mark.parametrize("name", sorted(NODES))
def test_executors_fit_the_node(name: str):
    node = NODES[name]
    header = (CONF / name).read_text()
    assert node.name in header and f"{node.count} " in header, f"{name}: header names the node"
    props = load_properties(CONF / name)
    cores = int(props["spark.executor.cores"])
    task_cpus = int(props["spark.task.cpus"])
    memory = _gib(props["spark.executor.memory"]) + _gib(props["spark.executor.memoryOverhead"])
    gpus = int(props["spark.executor.resource.gpu.amount"])
    task_gpus = int(props["spark.task.resource.gpu.amount"])
    instances = int(props["spark.executor.instances"])
    assert instances % node.count == 0, f"{name}: executors spread evenly over the nodes"
    per_node = instances // node.count
    assert per_node * cores <= node.vcpus, f"{name}: {per_node} x {cores} cores on {node.vcpus}"
    assert per_node * memory <= YARN_SHARE * node.memory_gib, (
        f"{name}: {per_node} x {memory:.0f} GiB of executor memory + overhead over "
        f"{YARN_SHARE:.0%} of {node.memory_gib:.0f} GiB")
    assert per_node * gpus == node.gpus, f"{name}: every GPU of the node has its executor"
    assert cores % task_cpus == 0
    # every concurrent task gets its own GPU, and no GPU sits idle
    assert cores // task_cpus == gpus // task_gpus, (name, cores, task_cpus, gpus)


@pytest.mark.parametrize("name", sorted(NODES))
def test_worker_reuse_is_on_only_with_one_gpu_per_executor(name: str):
    # a reused Python worker keeps the GPU TensorFlow opened first (pipeline/train/devices.py)
    props = load_properties(CONF / name)
    reuse = props.get("spark.python.worker.reuse", "true") == "true"
    gpus = int(props.get("spark.executor.resource.gpu.amount", "0"))
    assert reuse == (gpus <= 1), (name, reuse, gpus)
