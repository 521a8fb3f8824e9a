"""Building the SparkSession that every job uses, and shipping this package to executors.

In local mode the executors' Python must be the project's own interpreter (otherwise they
start the system Python and fail with ``ModuleNotFoundError``), so ``PYSPARK_PYTHON`` and
``PYSPARK_DRIVER_PYTHON`` are set to :data:`sys.executable` unless the user set them. On a
cluster, nodes need only the third-party dependencies: the ``pipeline`` package is zipped and
added with ``addPyFile`` so executor tasks can import it.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent

# Keep TensorFlow's C++ logging quiet in every Python worker Spark starts.
_EXECUTOR_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}


def is_local_master(master: str | None) -> bool:
    return master is None or master.startswith("local")


def package_zip(dest_dir: str | None = None) -> str:
    """Zip the ``pipeline`` package (sources only) and return the zip's path."""
    if dest_dir is None:
        dest = Path(tempfile.mkdtemp(prefix="lottery-spark-"))
        atexit.register(shutil.rmtree, dest, True)
    else:
        dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "pipeline.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            zf.write(path, Path("pipeline") / path.relative_to(PACKAGE_DIR))
    return str(out)


def _requested_master(master: str | None, running_under_submit: bool) -> str | None:
    """The master this session will use. Under spark-submit the submitted one wins, so a
    job-level default such as ``local[*]`` never turns a cluster driver into a local one."""
    if running_under_submit:
        from pyspark import SparkConf

        submitted = _submit_conf("spark.master") or SparkConf().get("spark.master", None)
        if submitted:
            return submitted
    return master or os.environ.get("MASTER") or _submit_conf("spark.master")


def _submit_conf(key: str) -> str | None:
    """A setting passed by spark-submit (it reaches the driver as a JVM system property)."""
    args = os.environ.get("PYSPARK_SUBMIT_ARGS", "").split()
    for i, arg in enumerate(args):
        if arg.startswith(f"{key}="):
            return arg.split("=", 1)[1]
        if key == "spark.master" and arg == "--master" and i + 1 < len(args):
            return args[i + 1]
    return None


def _submitted_keys(keys: Mapping[str, str]) -> set[str]:
    """Which of ``keys`` spark-submit already set (``--conf``, properties files): those win
    over the job's own defaults."""
    from pyspark import SparkConf

    submitted = SparkConf()  # under spark-submit this loads the submitted spark.* settings
    return {key for key in keys if submitted.contains(key)}


def get_spark(
    app_name: str,
    master: str | None = None,
    conf: Mapping[str, str] | None = None,
    ship_package: bool = True,
) -> SparkSession:
    """Return the active SparkSession, creating it with the project's settings if needed.

    ``master`` is used only when the job was not started by spark-submit with its own
    ``--master``; the default is ``local[*]``. Settings in ``conf`` are defaults: a key that
    spark-submit was given keeps the submitted value.
    """
    running_under_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    requested = _requested_master(master, running_under_submit)
    if is_local_master(requested):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    for key, value in _EXECUTOR_ENV.items():
        os.environ.setdefault(key, value)

    builder = SparkSession.builder.appName(app_name)
    if not running_under_submit:
        builder = builder.master(requested or "local[*]")
    defaults = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.host": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1")
        if is_local_master(requested)
        else None,
    }
    submitted = _submitted_keys(conf or {}) if running_under_submit else set()
    for key, value in {**defaults, **(conf or {})}.items():
        if value is not None and key not in submitted:
            builder = builder.config(key, value)
    for key, value in _EXECUTOR_ENV.items():
        builder = builder.config(f"spark.executorEnv.{key}", value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("LOTTERY_SPARK_LOG_LEVEL", "WARN"))
    if not getattr(spark.sparkContext, "_lottery_versions_logged", False):
        log_spark_versions(spark)
        spark.sparkContext._lottery_versions_logged = True  # type: ignore[attr-defined]
    if ship_package and not getattr(spark.sparkContext, "_lottery_package_shipped", False):
        spark.sparkContext.addPyFile(package_zip())
        spark.sparkContext._lottery_package_shipped = True  # type: ignore[attr-defined]
    return spark


def spark_versions(spark: SparkSession) -> tuple[str, str]:
    """(the Python PySpark's version, the JVM's ``spark.version``)."""
    import pyspark

    return pyspark.__version__, spark.sparkContext.version


def version_mismatch(python: str, jvm: str) -> str | None:
    """A warning when the Python PySpark and the JVM are different Spark releases (a
    vendor suffix such as EMR's ``-amzn-1`` is ignored), else None."""
    if _release(python) == _release(jvm):
        return None
    return (f"PySpark {python} (Python) drives Spark {jvm} (JVM): different releases. On "
            "Dataproc and EMR the cluster's own PySpark comes first on PYTHONPATH; if this "
            "is not intended, check PYTHONPATH and SPARK_HOME")


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    return tuple(int(g) for g in match.groups() if g is not None) if match else ()


def log_spark_versions(spark: SparkSession) -> None:
    python, jvm = spark_versions(spark)
    log.info("Spark: PySpark %s in Python, Spark %s in the JVM", python, jvm)
    warning = version_mismatch(python, jvm)
    if warning:
        log.warning("%s", warning)


def default_parallelism(spark: SparkSession) -> int:
    """Task slots the cluster offers right now (at least 1)."""
    return max(1, int(spark.sparkContext.defaultParallelism))
