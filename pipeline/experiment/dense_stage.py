"""Stage 1: dense training with Elephas, a checksummed checkpoint after every epoch.

``dense/epoch-000`` is the initialization and ``dense/epoch-00E`` the weights after epoch
E; each is a rewind point. The optimizer's variables are saved beside each epoch
(``optimizer-00E``), so a run killed mid-stage resumes from its last finished epoch with
the learning-rate schedule and momentum where they were. A checkpoint that fails its
checksum is reported and recomputed from the last good epoch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from pipeline.data.dataset import DatasetSplit
from pipeline.experiment.preflight import DatasetFacts
from pipeline.experiment.run_dir import RunDirectory, stage_timer
from pipeline.models.spec import ModelSpec
from pipeline.spark_session import default_parallelism
from pipeline.tensorboard_events import write_scalars
from pipeline.train.checkpoints import (
    CorruptCheckpoint,
    checkpoint_meta,
    checkpoint_record,
    discard_checkpoint,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from pipeline.train.data_parallel import make_spark_model, train_epoch
from pipeline.train.evaluation import evaluate_distributed
from pipeline.train.optimizers import make_loss, make_optimizer
from pipeline.train.procedure import TrainingProcedure

log = logging.getLogger(__name__)


@dataclass
class DenseOutcome:
    history: list[dict[str, Any]]
    seconds: float

    @property
    def final(self) -> dict[str, Any]:
        return self.history[-1]


def model_spec(run: RunDirectory, facts: DatasetFacts) -> ModelSpec:
    s = run.settings
    return ModelSpec(s.model.name, s.model.image_size, facts.num_classes, alpha=s.model.alpha,
                     seed=s.run.seed, bn_momentum=s.model.bn_momentum,
                     grayscale=s.model.grayscale, slimming_l1=s.train.slimming_l1,
                     layout=s.model.layout)


def workers(spark, run: RunDirectory) -> int:  # noqa: ANN001
    """Elephas workers: ``train.num_workers``, or one per task slot of the cluster.

    Once dense training has begun, the count it began with is kept (the learning-rate
    schedule and the global batch depend on it), even if the job resumes on a cluster of
    another size.
    """
    configured = run.settings.train.num_workers
    if configured > 0:
        return configured
    recorded = recorded_workers(run)
    if recorded:
        available = default_parallelism(spark)
        if recorded != available:
            log.info("dense: keeping the %d workers this run started with (%d task slots now)",
                     recorded, available)
        return recorded
    return default_parallelism(spark)


def recorded_workers(run: RunDirectory) -> int | None:
    """The Elephas worker count the dense stage ran with, if it has run at all."""
    info = run.stage_info("dense")
    if info.get("workers"):
        return int(info["workers"])
    store = run.dense_dir()
    if has_checkpoint(store, run.dense_weights(1)):
        try:
            return int(checkpoint_meta(store, run.dense_weights(1)).get("workers") or 0) or None
        except (OSError, ValueError):
            return None
    return None


def eval_shards(spark, run: RunDirectory) -> int:  # noqa: ANN001
    return run.settings.eval.shards or default_parallelism(spark)


def verified_epochs(run: RunDirectory, epochs: int) -> int:
    """The last epoch whose weights (and, after 0, optimizer state) pass their checksums.

    Corrupt checkpoints and every later one are discarded, with a warning naming them.
    """
    store = run.dense_dir()
    last = -1
    for epoch in range(epochs + 1):
        names = [run.dense_weights(epoch)] + ([run.dense_optimizer(epoch)] if epoch else [])
        if not all(has_checkpoint(store, n) for n in names):
            break
        try:
            for name in names:
                load_checkpoint(store, name)
        except CorruptCheckpoint as exc:
            log.warning("%s; recomputing dense training from epoch %d", exc, epoch)
            for later in range(epoch, epochs + 1):
                discard_checkpoint(store, run.dense_weights(later))
                discard_checkpoint(store, run.dense_optimizer(later))
            run.invalidate("dense", "grid")
            supersede_downstream(run)
            break
        last = epoch
    return last


def supersede_downstream(run: RunDirectory) -> None:
    """Masks and grid cells made from the old dense weights no longer match the retrained
    ones: move them under ``superseded/<time>/`` (kept for inspection, never reused)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for name in run.DERIVED_FROM_DENSE:
        if not run.store.exists(name):
            continue
        try:
            run.store.makedirs(*run.superseded(stamp))
            run.store.move(name, (*run.superseded(stamp), name))
        except OSError:  # object stores cannot rename directories
            run.store.delete(name)
        log.warning("dense: %s/ was made from the old dense weights; moved to %s/",
                    name, "/".join(run.superseded(stamp)))


def dense_final_epoch(run: RunDirectory) -> int:
    """The dense stage's last epoch: ``train.epochs``, or where the early-bird stop ended it."""
    return int(run.stage_info("dense").get("final_epoch", run.settings.train.epochs))


def dense_history(run: RunDirectory, upto: int) -> list[dict[str, Any]]:
    """The dense stage's per-epoch records (from its checkpoints' metadata) through ``upto``."""
    store = run.dense_dir()
    return [checkpoint_meta(store, run.dense_weights(e)) for e in range(1, upto + 1)]


def run_dense_stage(spark, run: RunDirectory, facts: DatasetFacts) -> DenseOutcome:  # noqa: ANN001
    """Train (or resume, or skip) the dense model; returns the per-epoch history."""
    s = run.settings
    epochs = s.train.epochs
    done_through = verified_epochs(run, epochs)
    if run.is_done("dense") and done_through >= dense_final_epoch(run):
        log.info("dense: finished earlier, skipped (%s)", run.dense_dir().root)
        return DenseOutcome(dense_history(run, dense_final_epoch(run)),
                            run.stage_info("dense").get("seconds", 0.0))
    sc = spark.sparkContext
    store = run.dense_dir()
    spec = model_spec(run, facts)
    n_workers = workers(spark, run)
    procedure = TrainingProcedure.of(s.train, spec, facts.train_url, facts.num_classes,
                                     facts.train_rows, n_workers, s.run.seed,
                                     s.run.deterministic)
    with stage_timer() as timer:
        model = spec.build()
        optimizer_state = None
        if done_through < 0:
            save_checkpoint(store, model.get_weights(), run.dense_weights(0), meta={"epoch": 0})
            done_through = 0
        else:
            model.set_weights(load_checkpoint(store, run.dense_weights(done_through)))
            if done_through:
                optimizer_state = load_checkpoint(store, run.dense_optimizer(done_through))
            log.info("dense: resuming after epoch %d of %d", done_through, epochs)
        optimizer = make_optimizer(s.train, procedure.steps_per_epoch)
        spark_model = make_spark_model(model, procedure, optimizer,
                                       make_loss(s.train.label_smoothing), optimizer_state)
        groups = DatasetSplit.of(facts.train_url).row_groups()
        log.info("dense: %d epochs on %d workers, rounds of at most %d images per worker",
                 epochs, n_workers, s.train.round_images_per_worker)
        tracker = early_bird_tracker(run, spec, done_through)
        final = epochs
        for epoch in range(done_through + 1, epochs + 1):
            if tracker is not None and tracker.should_stop():
                final = epoch - 1  # a resumed run whose last tracked point stopped it
                break
            stats = train_epoch(sc, spark_model, procedure, groups, epoch,
                                round_hook(tracker, epoch, spark_model, model))
            result = evaluate_distributed(sc, spec, model.get_weights(), facts.val_url,
                                          shards=eval_shards(spark, run),
                                          batch_size=s.eval.batch_size,
                                          description=f"eval dense epoch {epoch}")
            meta = {**stats.to_dict(), **result.to_dict(), "global_step": spark_model.global_step,
                    "workers": n_workers}
            if facts.holdout_url:  # early stops read it (data.holdout_per_class)
                holdout = evaluate_distributed(
                    sc, spec, model.get_weights(), facts.holdout_url,
                    shards=eval_shards(spark, run), batch_size=s.eval.batch_size,
                    description=f"eval dense epoch {epoch} on the holdout")
                meta.update(holdout.holdout_dict())
                log.info("dense: epoch %d holdout top-1 %.4f loss %.4f", epoch, holdout.top1,
                         holdout.loss)
            save_checkpoint(store, spark_model.optimizer_state, run.dense_optimizer(epoch),
                            meta={"epoch": epoch})
            save_checkpoint(store, model.get_weights(), run.dense_weights(epoch), meta=meta,
                            parent=checkpoint_record(store, run.dense_weights(epoch - 1))
                            ["sha256"])
            write_scalars(run.store, "dense", dense_history(run, epoch))
            log.info("dense: epoch %d/%d train loss %.4f, val top-1 %.4f top-5 %.4f loss %.4f "
                     "(%.1fs, %d rounds, %.1fs round overhead)", epoch, epochs, stats.loss,
                     result.top1, result.top5, result.loss, stats.seconds, stats.rounds,
                     stats.overhead_seconds)
            if tracker is not None:
                tracker.after_epoch(epoch, spark_model.global_step, model.get_weights())
                if tracker.should_stop():
                    final = epoch
                    break
        if tracker is not None:
            tracker.save(stopped_at=final if final < epochs else None)
            if final < epochs:
                log.info("dense: early-bird ticket found; stopped after epoch %d of %d "
                         "(%d epochs saved)", final, epochs, epochs - final)
    previous = float(run.stage_info("dense").get("seconds", 0.0))
    history = dense_history(run, final)
    seconds = previous + timer["seconds"]
    run.mark_done("dense", {"seconds": seconds, "epochs": epochs, "workers": n_workers,
                            "final_epoch": final, "epochs_saved": epochs - final})
    return DenseOutcome(history, seconds)


def early_bird_tracker(run: RunDirectory, spec: ModelSpec, done_through: int):  # noqa: ANN201
    """The replicate's mask tracker when ``early_bird.enabled``, else None."""
    if not run.settings.early_bird.enabled:
        return None
    from pipeline.early_bird.tracker import EarlyBirdTracker

    done = max(done_through, 0)
    rounds = sum(int(h.get("rounds", 0)) for h in dense_history(run, done))
    return EarlyBirdTracker(run, spec, run.settings.early_bird, done, rounds)


def round_hook(tracker, epoch: int, spark_model, model):  # noqa: ANN001, ANN201
    """The per-round callback of ``epoch`` for a tracker (None without one)."""
    if tracker is None:
        return None
    return lambda index, count: tracker.after_round(epoch, index, count,
                                                    spark_model.global_step, model.get_weights)

