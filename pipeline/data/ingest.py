"""The ingest: plan on the driver, decode on the executors, write Petastorm datasets.

The output's layout (``train/``, ``val/``, ``rejects/``, ``classes.txt``, ``dataset.json``,
``_COMPLETE`` last) is owned by :mod:`pipeline.data.dataset`, which also writes the metadata.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import logging
import math
import tarfile
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
from petastorm.etl.dataset_metadata import materialize_dataset
from petastorm.fs_utils import FilesystemResolver
from petastorm.unischema import dict_to_spark_row
from pyspark import AccumulatorParam
from pyspark.sql import Row, SparkSession

from pipeline.data.dataset import IngestedDataset
from pipeline.data.decode import RejectedImage, prepare_image
from pipeline.data.layouts import SPLITS, IngestError, IngestPlan, plan_ingest
from pipeline.data.output import StagedOutput, check_output
from pipeline.data.schema import make_schema
from pipeline.data.settings import IngestSettings
from pipeline.data.units import Unit
from pipeline.spark_progress import JobProgress
from pipeline.spark_session import default_parallelism, get_spark
from pipeline.store import ArtifactStore, normalize_url

log = logging.getLogger(__name__)

REJECTS_SCHEMA = pa.schema(
    [("split", pa.string()), ("source", pa.string()), ("reason", pa.string())]
)


@dataclass
class IngestResult:
    output: str
    layout: str
    num_classes: int
    rows: dict[str, int]
    rejected: int
    seconds: float

    @property
    def images_per_s(self) -> float:
        return (sum(self.rows.values()) + self.rejected) / max(self.seconds, 1e-9)

    def summary(self) -> str:
        rows = ", ".join(f"{split} {count}" for split, count in self.rows.items())
        return (
            f"ingested {self.output} ({self.layout}, {self.num_classes} classes): rows {rows}; "
            f"rejected {self.rejected}; {self.seconds:.1f} s, {self.images_per_s:.1f} images/s"
        )


class _ListParam(AccumulatorParam):
    """Accumulates lists (the rejects, which are few) from the executors."""

    def zero(self, value: list[Any]) -> list[Any]:
        return []

    def addInPlace(self, value1: list[Any], value2: list[Any]) -> list[Any]:  # noqa: N802
        value1.extend(value2)
        return value1


class _QuietFactory:
    """petastorm's file-system factory, minus the pyarrow deprecation warnings.

    petastorm 0.13 uses pyarrow's legacy file systems; every executor task that opens one
    would print a FutureWarning.
    """

    def __init__(self, spark: SparkSession, url: str) -> None:
        resolver = FilesystemResolver(
            url, spark.sparkContext._jsc.hadoopConfiguration(), user=spark.sparkContext.sparkUser()
        )
        self._factory = resolver.filesystem_factory()

    def __call__(self) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return self._factory()


def hadoop_url(url: str) -> str:
    """The URL as Spark's Hadoop file systems expect it."""
    url = normalize_url(url)
    return "s3a://" + url[len("s3://") :] if url.startswith("s3://") else url


def _row_key(row: Row) -> int:
    return zlib.crc32(row.source.encode("utf-8"))


def count_rows(url: str) -> int:
    """Rows of a Parquet directory, from the file footers."""
    store = ArtifactStore(url)
    dataset = pa_dataset.dataset(store.path(), format="parquet", filesystem=store.fs)
    return int(dataset.count_rows())


def _encode_units(
    units: Iterable[Unit],
    split: str,
    image_size: int,
    jpeg_quality: int,
    draft: bool,
    buffer_bytes: int,
    rejects: Any,
) -> Iterator[Row]:
    """Executor side: unit → image bytes → strict decode → RGB N×N → Petastorm row."""
    schema = make_schema(image_size, jpeg_quality)
    rejected: list[tuple[str, str, str]] = []
    for unit in units:
        payloads = unit.payloads(buffer_bytes)
        while True:
            try:
                payload = next(payloads)
            except StopIteration:
                break
            except (tarfile.TarError, EOFError) as exc:  # a damaged class tar is data, too
                rejected.append((split, getattr(unit, "prefix", ""), f"unreadable tar: {exc}"))
                break
            try:
                image = prepare_image(payload.data, image_size, draft)
            except RejectedImage as exc:
                rejected.append((split, payload.source, exc.reason))
                continue
            yield dict_to_spark_row(
                schema,
                {
                    "image": image,
                    "label": payload.label,
                    "synset": payload.synset,
                    "source": payload.source,
                },
            )
    rejects.add(rejected)


def plan_units(plan: IngestPlan, split: str, config: IngestSettings, min_tasks: int) -> list[Unit]:
    """The split's work, one unit per Spark task.

    Image files are cut into ``max(min_tasks, files / images_per_task)`` chunks; each class
    tar of the train tar is one unit (it is streamed); tar members (val) are cut into runs of
    neighbours like files; each pickled CIFAR batch is one unit.
    """
    split_plan = plan.splits[split]
    units: list[Unit] = [*split_plan.class_tars, *split_plan.cifar_batches]
    for count, make in (
        (len(split_plan.files), lambda n: plan.file_chunks(split, n, config.mix_classes)),
        (len(split_plan.tar_members), lambda n: plan.tar_slices(split, n)),
    ):
        if count:
            units.extend(make(max(min_tasks, math.ceil(count / config.images_per_task))))
    return units


def write_split(
    spark: SparkSession, plan: IngestPlan, split: str, url: str, config: IngestSettings
) -> tuple[int, list[tuple[str, str, str]]]:
    """Decode one split on the executors and write it as a Petastorm dataset at ``url``.

    Returns the rows written and the rejects ``(split, source, reason)``.
    """
    sc = spark.sparkContext
    min_tasks = default_parallelism(spark) * config.tasks_per_core
    rejects = sc.accumulator([], _ListParam())
    encode = functools.partial(
        _encode_units,
        split=split,
        image_size=config.image_size,
        jpeg_quality=config.jpeg_quality,
        draft=config.jpeg_draft,
        buffer_bytes=config.tar_read_buffer_mb << 20,
        rejects=rejects,
    )
    schema = make_schema(config.image_size, config.jpeg_quality)
    units = plan_units(plan, split, config, min_tasks)
    log.info("%s: %d tasks", split, len(units))
    with JobProgress(spark, f"ingest {split}", config.progress_interval_s, log):
        rows = sc.parallelize(units, len(units)).mapPartitions(encode)
        if plan.splits[split].class_tars and config.mix_classes:
            # A class tar is one task, so mixing classes needs a shuffle of the encoded rows.
            rows = rows.keyBy(_row_key).partitionBy(max(min_tasks, len(units))).values()
        frame = spark.createDataFrame(rows, schema.as_spark_schema(), verifySchema=False)
        factory = _QuietFactory(spark, url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            with materialize_dataset(
                spark, url, schema, config.row_group_size_mb, filesystem_factory=factory
            ):
                frame.write.mode("overwrite").parquet(hadoop_url(url))
    written = count_rows(url)
    # Retried tasks may report a reject twice.
    unique = sorted(set(rejects.value))
    if written == 0:
        raise IngestError(f"no decodable {split} images in {plan.source} ({len(unique)} rejected)")
    log.info("%s: wrote %d rows, rejected %d", split, written, len(unique))
    return written, unique


def _write_rejects(store: ArtifactStore, rejects: list[tuple[str, str, str]]) -> None:
    columns = list(zip(*rejects, strict=True)) if rejects else [[], [], []]
    table = pa.Table.from_arrays([pa.array(c, pa.string()) for c in columns], schema=REJECTS_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.write_bytes(buffer.getvalue(), "rejects", "part-00000.parquet")


def ingest_imagenet(
    source: str,
    output: str,
    config: IngestSettings | None = None,
    overwrite: bool = False,
    spark: SparkSession | None = None,
) -> IngestResult:
    """Ingest ``source`` into Petastorm datasets at ``output``; see the module docstring.

    Problems with the source, its labels or the output raise :class:`IngestError` before any
    Spark work starts. Undecodable images are not errors: they are listed in ``rejects/``.
    """
    config = config or IngestSettings()
    start = time.monotonic()
    output = normalize_url(output)
    plan = plan_ingest(
        source,
        config.layout,
        config.classes,
        config.val_labels_file,
        config.tar_read_buffer_mb << 20,
        config.cifar100_labels,
    )
    check_output(output, overwrite)
    log.info("layout %s, %d classes, source %s", plan.layout, len(plan.classes), plan.source)
    planning = time.monotonic() - start
    spark = spark or get_spark("ingest-imagenet")
    start = time.monotonic() - planning  # Spark start-up is not ingest work
    rows: dict[str, int] = {}
    rejects: list[tuple[str, str, str]] = []
    with StagedOutput(output, overwrite) as staging:
        for split in SPLITS:
            rows[split], split_rejects = write_split(spark, plan, split, staging.url(split), config)
            rejects.extend(split_rejects)
        _write_rejects(staging, rejects)
        seconds = time.monotonic() - start
        IngestedDataset.write_metadata(staging, plan.classes, {
            "image_size": config.image_size,
            "num_classes": len(plan.classes),
            "rows": rows,
            "rejected": len(rejects),
            "layout": plan.layout,
            "source": plan.source,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
            "settings": dataclasses.asdict(config),
        })
    result = IngestResult(output, plan.layout, len(plan.classes), rows, len(rejects), seconds)
    log.info(result.summary())
    return result
