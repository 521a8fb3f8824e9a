"""A Spark standalone cluster on the loopback interface, started from the installed pyspark."""

from pipeline.cluster.standalone import (
    ClusterError,
    StandaloneCluster,
    free_port,
    recorded_status,
    stop_process_groups,
    stop_recorded,
)

__all__ = [
    "ClusterError",
    "StandaloneCluster",
    "free_port",
    "recorded_status",
    "stop_process_groups",
    "stop_recorded",
]
