"""Distributed dense training (Elephas rounds, 2 workers) converges like one-process Keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from pipeline.data.readers import load_numpy, split_url
from pipeline.experiment.settings import TrainSettings
from pipeline.models.spec import ModelSpec
from pipeline.train.data_parallel import DataParallelJob, make_spark_model, train_epoch
from pipeline.train.evaluation import evaluate_distributed, evaluate_local
from pipeline.train.optimizers import make_loss, make_optimizer, steps_per_epoch
from pipeline.train.rounds import list_row_groups

WORKERS = 2
BATCH = 32
EPOCHS = 8
SPEC = ModelSpec("lenet_300_100", 16, 10, seed=0)
TRAIN = TrainSettings(epochs=EPOCHS, batch_size=BATCH, optimizer="sgd", learning_rate=0.05,
                      momentum=0.9, lr_schedule="cosine", augment=False)


@pytest.fixture(scope="module")
def digits_dataset(spark, tmp_path_factory) -> str:
    """1,000 train and 500 val digits at 16×16: enough val images that 2 points = 10."""
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.sample import make_sample_imagenet
    from pipeline.data.settings import IngestConfig

    root = tmp_path_factory.mktemp("convergence")
    make_sample_imagenet(str(root / "src"), train_per_class=100, val_per_class=50, size=32)
    return ingest_imagenet(str(root / "src"), str(root / "ds"), IngestConfig(image_size=16),
                           spark=spark).output


def _single_process(url: str) -> float:
    x, y = load_numpy(split_url(url, "train"))
    model = SPEC.build()
    # One process sees the same global batch as the workers together: BATCH × WORKERS.
    steps = steps_per_epoch(len(x), BATCH, WORKERS)
    model.compile(optimizer=make_optimizer(TRAIN, steps), loss=make_loss(0.0))
    keras.utils.set_random_seed(0)
    model.fit(x.astype("float32"), np.eye(10, dtype="float32")[y], batch_size=BATCH * WORKERS,
              epochs=EPOCHS, shuffle=True, verbose=0)
    return evaluate_local(model, split_url(url, "val"), SPEC.image_size, 256).top1


def _distributed(spark, url: str) -> tuple[float, int]:
    train_url = split_url(url, "train")
    job = DataParallelJob(SPEC, train_url, 10, WORKERS, images_per_task=128, batch_size=BATCH,
                          augment=False, seed=0)
    model = SPEC.build()
    steps = steps_per_epoch(1000, BATCH, WORKERS)
    spark_model = make_spark_model(model, job, make_optimizer(TRAIN, steps), make_loss(0.0))
    groups = list_row_groups(train_url)
    for epoch in range(1, EPOCHS + 1):
        train_epoch(spark.sparkContext, spark_model, job, groups, epoch)
    result = evaluate_distributed(spark.sparkContext, SPEC, model.get_weights(),
                                  split_url(url, "val"), shards=2, batch_size=256)
    return result.top1, spark_model.global_step


def test_distributed_matches_single_process(spark, digits_dataset):
    single = _single_process(digits_dataset)
    distributed, global_step = _distributed(spark, digits_dataset)
    # the optimizer's step counter ran on across rounds: one epoch = 1000 / 64 steps
    assert global_step == EPOCHS * steps_per_epoch(1000, BATCH, WORKERS)
    assert single > 0.5, f"single-process baseline did not learn ({single:.3f})"
    assert abs(distributed - single) <= 0.02, (distributed, single)
