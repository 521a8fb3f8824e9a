"""Settings of the main job (``jobs/prune_imagenet.py``).

Each field becomes a ``--set section.key=value`` flag; scripts outside the project rely on
these names, so rename nothing. The run directory is named by a hash of the non-default
settings (see :func:`pipeline.config.settings_hash`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import section, setting

CONTROL_NAMES = ("reinit", "random_mask")


@dataclass
class DataSettings:
    url: str = setting("", "URL of a dataset written by jobs/ingest_imagenet.py")
    train_split: str = setting("train", "sub-directory of data.url used for training")
    val_split: str = setting("val", "sub-directory of data.url used for evaluation")
    num_classes: int = setting(0, "classes to expect (0 = all classes of the dataset)")


@dataclass
class RunSettings:
    output: str = setting("runs", "URL under which the run directory is created")
    name: str = setting("lottery", "run name; the directory is <name>-<settings hash>")
    seed: int = setting(0, "seed of the initialization, data order and control runs")
    master: str = setting("local[*]", "Spark master when not set by spark-submit")
    deterministic: bool = setting(
        True, "TensorFlow op determinism and one ordered reader thread per grid task: the "
        "same settings give the same numbers on the same hardware (false: faster on GPUs)"
    )


@dataclass
class ModelSettings:
    name: str = setting("mobilenet_v2", "model registry name (mobilenet_v2, lenet_300_100, conv4)")
    image_size: int = setting(224, "input height and width; must not exceed the dataset's")
    alpha: float = setting(1.0, "MobileNetV2 width multiplier")
    bn_momentum: float | None = setting(
        None, "BatchNorm moving-average momentum (null = the model's own: 0.999 in MobileNetV2)"
    )


@dataclass
class TrainSettings:
    epochs: int = setting(2, "epochs of dense training (and of each grid cell)")
    batch_size: int = setting(64, "batch size per worker / per grid task")
    optimizer: str = setting("sgd", "sgd, rmsprop or adam")
    learning_rate: float = setting(0.05, "peak learning rate")
    momentum: float = setting(0.9, "momentum (sgd, rmsprop)")
    weight_decay: float = setting(0.0, "decoupled weight decay")
    lr_schedule: str = setting("cosine", "constant, cosine or exponential")
    warmup_epochs: float = setting(0.0, "linear warm-up length in epochs")
    lr_decay_rate: float = setting(0.98, "per-epoch factor of the exponential schedule")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy loss")
    round_images_per_worker: int = setting(
        2048, "images one Elephas task holds per round (bounds executor memory)"
    )
    num_workers: int = setting(0, "Elephas workers (0 = the cluster's task slots)")
    mixed_precision: bool = setting(False, "mixed_float16 on GPUs (ignored on CPU)")
    augment: bool = setting(True, "random horizontal flips in training")


@dataclass
class PruneSettings:
    method: str = setting("imp", "imp (iterative, level L prunes the level L-1 ticket) or oneshot")
    levels: int = setting(2, "pruning levels; level L keeps (1-f)^L of the prunable weights")
    fraction_per_level: float = setting(0.2, "fraction f of the remaining weights pruned per level")
    strategy: str = setting(
        "global", "global (one threshold) or layerwise (same fraction per layer)"
    )
    prunable: list[str] = setting(["conv", "depthwise", "dense"], "layer kinds that may be pruned")
    first_conv_fraction: float | None = setting(None, "own fraction for the first conv (null = f)")
    classifier_fraction: float | None = setting(None, "own fraction for the classifier (null = f)")


@dataclass
class RewindSettings:
    epochs: list[int] = setting([0, 1], "rewind points: 0 = original init, k > 0 = late reset")


@dataclass
class GridSettings:
    controls: list[str] = setting(["reinit", "random_mask"], "control runs for every cell")
    mode: str = setting("task", "task (one Spark task per cell) or data_parallel (Elephas)")
    task_cpus: int = setting(1, "cores each grid task uses (spark.task.cpus)")
    max_failures: int = setting(2, "attempts of a grid cell before it is recorded as failed")
    reader_workers: int = setting(2, "Petastorm reader threads per grid task")
    batch_size: int = setting(
        0, "batch of a grid task (0 = the dense model's global batch: train.batch_size x "
        "Elephas workers, so tickets train with the same steps and schedule as dense)"
    )


@dataclass
class EvalSettings:
    batch_size: int = setting(256, "batch size of evaluation")
    shards: int = setting(0, "evaluation tasks for one model (0 = the cluster's task slots)")


@dataclass
class PruneJobSettings:
    data: DataSettings = section(DataSettings)
    run: RunSettings = section(RunSettings)
    model: ModelSettings = section(ModelSettings)
    train: TrainSettings = section(TrainSettings)
    prune: PruneSettings = section(PruneSettings)
    rewind: RewindSettings = section(RewindSettings)
    grid: GridSettings = section(GridSettings)
    eval: EvalSettings = section(EvalSettings)


# Settings that change where or how a run executes but not what it computes; they are left
# out of the run-directory hash so that, e.g., moving to a bigger cluster resumes the run.
EXECUTION_ONLY = (
    "run.output",
    "run.name",
    "run.master",
    "run.deterministic",
    "grid.task_cpus",
    "grid.max_failures",
    "grid.reader_workers",
    "eval.batch_size",
    "eval.shards",
)
