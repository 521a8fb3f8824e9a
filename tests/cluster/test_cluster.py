"""The jobs on a real Spark standalone cluster (2 workers × 1 core on 127.0.0.1) via
spark-submit: ingest, the main job, and proof that executors run the shipped package."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.data.readers import validate_dataset
from tests.support.cluster_jobs import (
    CLASSES,
    REPO,
    TRAIN_PER_CLASS,
    VAL_PER_CLASS,
    ClusterIngest,
    assert_complete_run,
    assert_ok,
    expected_cells,
    prune_args,
    prune_run_dir,
    scratch_cwd,
    spark_submit,
)

pytestmark = pytest.mark.cluster

@pytest.fixture(scope="module")
def pruned(standalone_cluster, cluster_ingest: ClusterIngest,  # noqa: F811
           tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    assert_ok(cluster_ingest.proc, standalone_cluster)
    dataset = str(cluster_ingest.dataset)
    root = tmp_path_factory.mktemp("cluster_prune")
    output = root / "runs"
    run = spark_submit(standalone_cluster, "prune_imagenet.py", prune_args(dataset, output),
                       cwd=scratch_cwd(root))
    return run, prune_run_dir(dataset, output), expected_cells(dataset, output)


def source_names(source: Path, split: str) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p in (source / split).glob("*/*") if p.is_file()}


def test_ingest_on_the_cluster(standalone_cluster, cluster_ingest: ClusterIngest):  # noqa: F811
    proc, output = cluster_ingest.proc, cluster_ingest.dataset
    assert_ok(proc, standalone_cluster)
    assert "rows train 200, val 60" in proc.stdout, proc.stdout
    validate_dataset(str(output))
    classes = (output / "classes.txt").read_text().split()
    assert len(classes) == CLASSES
    info = json.loads((output / "dataset.json").read_text())
    assert info["rows"] == {"train": CLASSES * TRAIN_PER_CLASS, "val": CLASSES * VAL_PER_CLASS}
    assert info["rejected"] == 0 and info["image_size"] == 32
    for split in ("train", "val"):
        table = pq.read_table(output / split, columns=["source", "synset", "label"])
        sources = table.column("source").to_pylist()
        assert len(sources) == len(set(sources)) == info["rows"][split]
        assert set(sources) == source_names(cluster_ingest.source, split)
        for synset, label in zip(table.column("synset").to_pylist(),
                                 table.column("label").to_pylist(), strict=True):
            assert classes[label] == synset


def test_prune_job_on_the_cluster(standalone_cluster, pruned):  # noqa: F811
    proc, run_dir, cells = pruned
    assert_ok(proc, standalone_cluster)
    assert f"run directory: file://{run_dir}" in proc.stdout, proc.stdout
    table = assert_complete_run(run_dir, cells)
    assert len(table) == 1 + len(cells) == 9  # dense, 2 level-0 references, 2 tickets, 4 controls
    assert table["top1"].notna().all() and table["train_seconds"].notna().all()
    assert "L1-k1-random_mask" in (run_dir / "report.md").read_text()


WHERE_IS_PIPELINE = """
    import json
    import os
    import sys

    sys.path.insert(0, {repo!r})  # as jobs/*.py do: the driver imports the repo's copy

    from pipeline.spark_session import get_spark


    def where(_):
        import pipeline
        import pyspark
        from pyspark import SparkFiles

        return [{{"file": pipeline.__file__, "root": SparkFiles.getRootDirectory(),
                  "cwd": os.getcwd(), "path": sys.path[:4], "pyspark": pyspark.__version__}}]


    # The prune job passes its run.master default; the submitted --master must win.
    spark = get_spark("where-is-pipeline", master="local[*]")
    rows = spark.sparkContext.parallelize(range(4), 4).mapPartitions(where).collect()
    print("EXECUTORS " + json.dumps(rows))
    print("MASTER " + spark.sparkContext.master)
    import pyspark

    print("SPARK " + json.dumps([pyspark.__version__, spark.sparkContext.version]))
    spark.stop()
"""


def test_executors_import_the_shipped_package(standalone_cluster, submit_cwd):  # noqa: F811
    script = submit_cwd.parent / "where_is_pipeline.py"
    script.write_text(textwrap.dedent(WHERE_IS_PIPELINE.format(repo=str(REPO))))
    proc = spark_submit(standalone_cluster, script, [], cwd=submit_cwd)
    assert_ok(proc, standalone_cluster)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("EXECUTORS "))
    rows = json.loads(line.removeprefix("EXECUTORS "))
    assert len(rows) == 4
    assert f"MASTER {standalone_cluster.master_url}" in proc.stdout.splitlines()
    workers = {str(standalone_cluster.worker_dir(i)) for i in range(2)}
    # one Spark release in the driver's Python, the JVM and every executor's Python
    line = next(x for x in proc.stdout.splitlines() if x.startswith("SPARK "))
    python, jvm = json.loads(line.removeprefix("SPARK "))
    assert python == jvm and {row["pyspark"] for row in rows} == {python}
    expected = os.environ.get("LOTTERY_EXPECT_SPARK")  # set by make's Spark 3.5 leg
    assert not expected or python == expected, (python, expected)
    for row in rows:
        # pipeline/__init__.py inside the zip the driver shipped, in Spark's files directory,
        # not the editable install in the repository.
        assert "/pipeline.zip/pipeline/__init__.py" in row["file"], row
        assert row["file"].startswith(row["root"].rstrip("/") + "/"), row
        assert not row["file"].startswith(str(REPO)), row
        assert any(row["cwd"].startswith(w) for w in workers), row
