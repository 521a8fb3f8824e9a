"""Which master a session uses, and what the package zip shipped to executors holds."""

from __future__ import annotations

import zipfile

import pytest

from pipeline.spark_session import _requested_master, package_zip


def test_submitted_master_wins_over_the_job_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PYSPARK_SUBMIT_ARGS",
                       "--master spark://10.1.2.3:7077 --conf spark.executor.cores=4 pyspark-shell")
    assert _requested_master("local[*]", running_under_submit=True) == "spark://10.1.2.3:7077"


def test_job_master_used_outside_spark_submit(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.delenv("MASTER", raising=False)
    assert _requested_master("local[2]", running_under_submit=False) == "local[2]"
    assert _requested_master(None, running_under_submit=False) is None


def test_package_zip_holds_the_sources(tmp_path):
    path = package_zip(str(tmp_path))
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
    assert "pipeline/__init__.py" in names
    assert "pipeline/tickets/__init__.py" in names
    assert not any(n.endswith(".pyc") for n in names)


def test_the_python_and_jvm_spark_are_the_same_release(spark):
    import os

    import pyspark

    from pipeline.spark_session import spark_versions, version_mismatch

    python, jvm = spark_versions(spark)
    assert python == pyspark.__version__ and jvm == spark.version
    assert version_mismatch(python, jvm) is None
    expected = os.environ.get("LOTTERY_EXPECT_SPARK")  # set by make's Spark 3.5 leg
    if expected:
        assert python == jvm == expected


def test_a_different_release_is_warned_but_a_vendor_suffix_is_not():
    from pipeline.spark_session import version_mismatch

    assert version_mismatch("3.5.5", "3.5.5-amzn-1") is None
    assert "PySpark 4.0.0 (Python) drives Spark 3.5.3 (JVM)" in version_mismatch("4.0.0", "3.5.3")
