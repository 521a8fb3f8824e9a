"""Settings of the main job (``jobs/prune_imagenet.py``).

Each field becomes a ``--set section.key=value`` flag; scripts outside the project rely on
these names, so rename nothing. The run directory is named by a hash of the non-default
settings (see :func:`pipeline.config.settings_hash`). Each section checks its own values
when built (a ConfigError naming the key); checks across sections and against the dataset
are the job's preflight (:mod:`pipeline.experiment.preflight`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from pipeline.config import check_choices, require, section, setting
from pipeline.early_bird.settings import EarlyBirdSettings
from pipeline.policy_fields import PolicyFields
from pipeline.tracking.settings import TrackingSettings

CONTROL_NAMES = ("reinit", "random_mask")


@dataclass
class DataSettings:
    url: str = setting("", "URL of a dataset written by jobs/ingest_imagenet.py")
    train_split: str = setting("train", "sub-directory of data.url used for training")
    val_split: str = setting("val", "sub-directory of data.url used for evaluation")
    num_classes: int = setting(0, "classes to expect (0 = all classes of the dataset)")
    holdout_per_class: int = setting(
        0, "images of every class carved from the train split (seeded by run.seed, shared by "
        "all replicates) that no model trains on: early-stop epochs read their loss and val "
        "only reports; 0 = no holdout, early stops read val"
    )

    def __post_init__(self) -> None:
        require(self.holdout_per_class >= 0, "holdout_per_class",
                f"must be 0 or more, got {self.holdout_per_class}")


@dataclass
class RunSettings:
    output: str = setting("runs", "URL under which the run directory is created")
    name: str = setting("lottery", "run name; the directory is <name>-<settings hash>")
    seed: int = setting(0, "seed from which every replicate's seed derives")
    replicates: int = setting(
        1, "independent replicates (each its own initialization, data order and control "
        "draws) under replicate-<i>/; raising it later reuses the replicates already trained"
    )
    master: str = setting("local[*]", "Spark master when not set by spark-submit")
    deterministic: bool = setting(
        True, "TensorFlow op determinism and one ordered reader thread per grid task: the "
        "same settings give the same numbers on the same hardware (false: faster on GPUs)"
    )
    lease_timeout: float = setting(
        300.0, "seconds without renewal after which a driver's lease on the run directory is "
        "stale and another driver may take the run over (the holder renews it every third)"
    )

    def __post_init__(self) -> None:
        require(self.replicates >= 1, "replicates", f"must be at least 1, got {self.replicates}")
        require(self.lease_timeout > 0, "lease_timeout",
                f"must be positive, got {self.lease_timeout}")


@dataclass
class ModelSettings:
    name: str = setting("mobilenet_v2", "model registry name (mobilenet_v2, lenet_300_100, conv4)")
    image_size: int = setting(224, "input height and width; must not exceed the dataset's")
    alpha: float = setting(1.0, "MobileNetV2 width multiplier")
    bn_momentum: float | None = setting(
        None, "BatchNorm moving-average momentum (null = the model's own: 0.999 in MobileNetV2)"
    )
    grayscale: bool = setting(
        False, "average R, G and B into one channel before the first layer (lenet_300_100 "
        "and conv4: the paper's gray inputs)"
    )
    layout: Literal["keras", "xnnpack"] = setting(
        "keras", "mobilenet_v2's layout: keras (keras.applications) or xnnpack (the first "
        "convolution padded symmetrically, the shape XNNPACK's sparse inference accepts; "
        "train in the layout you deploy)"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.layout == "keras" or self.name == "mobilenet_v2", "layout",
                f"{self.layout} is a layout of mobilenet_v2, not of {self.name}")
        require(self.alpha > 0, "alpha", f"must be positive, got {self.alpha}")
        require(self.bn_momentum is None or 0 < self.bn_momentum < 1, "bn_momentum",
                f"must be in (0, 1), got {self.bn_momentum}")


@dataclass
class TrainSettings:
    epochs: int = setting(2, "epochs of dense training (and of each grid cell)")
    batch_size: int = setting(64, "batch size per worker / per grid task")
    micro_batch_size: int = setting(
        0, "images per forward/backward pass when a batch does not fit one device: each "
        "optimizer step accumulates batch_size/micro_batch_size passes (Keras "
        "gradient_accumulation_steps); 0 = the whole batch, or on GPU executors the largest "
        "divisor of batch_size that the memory estimate fits in their GPUs"
    )
    optimizer: Literal["sgd", "rmsprop", "adam"] = setting("sgd", "sgd, rmsprop or adam")
    learning_rate: float = setting(0.05, "peak learning rate")
    momentum: float = setting(0.9, "momentum (sgd, rmsprop)")
    weight_decay: float = setting(0.0, "decoupled weight decay")
    # the kinds of pipeline.train.schedules.SCHEDULE_KINDS (not imported: it loads Keras)
    lr_schedule: Literal["constant", "cosine", "exponential"] = setting(
        "cosine", "constant, cosine or exponential"
    )
    warmup_epochs: float = setting(0.0, "linear warm-up length in epochs")
    lr_decay_rate: float = setting(0.98, "per-epoch factor of the exponential schedule")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy loss")
    round_images_per_worker: int = setting(
        2048, "images one Elephas task holds per round (bounds executor memory)"
    )
    num_workers: int = setting(0, "Elephas workers (0 = the cluster's task slots)")
    mixed_precision: bool = setting(False, "mixed_float16 on GPUs (ignored on CPU)")
    augment: bool = setting(True, "random horizontal flips in training")
    slimming_l1: float = setting(
        0.0, "L1 penalty on every BatchNorm scale (network slimming, Liu et al. 2017; 1e-4 "
        "there), in the loss of the dense run and of every cell alike"
    )

    @property
    def accumulation_steps(self) -> int:
        """Passes per optimizer step: 1, or batch_size / micro_batch_size."""
        return self.batch_size // self.micro_batch_size if self.micro_batch_size else 1

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.slimming_l1 >= 0, "slimming_l1", f"must be 0 or more, got {self.slimming_l1}")
        require(self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}")
        require(self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}")
        require(self.micro_batch_size == 0 or (
            0 < self.micro_batch_size <= self.batch_size
            and self.batch_size % self.micro_batch_size == 0), "micro_batch_size",
            f"must be 0 or a divisor of train.batch_size {self.batch_size}, got "
            f"{self.micro_batch_size}")
        require(self.learning_rate > 0, "learning_rate", "must be positive")
        require(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")


@dataclass
class PruneSettings(PolicyFields):
    """``prune.*``: the policy fields (declared in :class:`PolicyFields`), method and levels."""

    method: Literal["imp", "oneshot"] = setting(
        "imp", "imp (iterative, level L prunes the level L-1 ticket) or oneshot"
    )
    levels: int = setting(2, "pruning levels; level L keeps (1-f)^L of the prunable weights")

    def __post_init__(self) -> None:
        # stricter than a policy, which may keep everything (f = 0)
        require(0 < self.fraction_per_level < 1, "fraction_per_level",
                f"must be in (0, 1), got {self.fraction_per_level}")
        super().__post_init__()
        require(self.levels >= 1, "levels", f"must be at least 1, got {self.levels}")


@dataclass
class RewindSettings:
    epochs: list[int] = setting(
        [0, 1], "rewind points: 0 = original init, k > 0 = late reset (a cell rewound to k "
        "trains epochs k+1..train.epochs, the schedule continued from step k)"
    )
    optimizer: Literal["reset", "restore"] = setting(
        "reset", "optimizer state of a rewound cell: reset (a fresh optimizer, as open_lth: "
        "zero moments, Adam's bias correction counted from the rewind, the schedule "
        "continued at step k) or restore (the dense run's state at epoch k, pruned slots "
        "zeroed)"
    )

    def __post_init__(self) -> None:
        check_choices(self)
        require(bool(self.epochs), "epochs", "give at least one rewind point, e.g. [0]")
        require(all(k >= 0 for k in self.epochs), "epochs",
                f"rewind points are epochs, 0 or more; got {self.epochs}")
        require(len(set(self.epochs)) == len(self.epochs), "epochs",
                f"duplicates in {self.epochs}")


@dataclass
class GridSettings:
    controls: list[str] = setting(["reinit", "random_mask"], "control runs for every cell")
    data_order: Literal["fresh", "replay"] = setting(
        "fresh", "batch order of every cell of a replicate (tickets, controls, level-0 "
        "references alike): fresh (one new order per replicate, as open_lth draws one per "
        "training) or replay (the dense run's order)"
    )
    mode: Literal["task", "data_parallel"] = setting(
        "task", "task (one Spark task per cell) or data_parallel (Elephas)"
    )
    task_cpus: int = setting(1, "cores each grid task uses (spark.task.cpus)")
    max_failures: int = setting(2, "attempts of a grid cell before it is recorded as failed")
    reader_workers: int = setting(2, "parallel JPEG decode calls per grid task")

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.max_failures >= 1, "max_failures", "must be at least 1")
        require(self.task_cpus >= 1, "task_cpus", "must be at least 1")


STABILITY_SUBJECTS = ("dense", "tickets")


@dataclass
class StabilitySettings:
    enabled: bool = setting(
        False, "instability analysis (linear mode connectivity, Frankle et al. 2020): two "
        "copies trained from each rewind point on two data orders, evaluated along the "
        "straight line between their final weights"
    )
    epochs: list[int] = setting([], "candidate rewind points (empty = rewind.epochs)")
    subjects: list[str] = setting(
        ["dense"], "dense (the unpruned network from k) and/or tickets (the level-L ticket "
        "from k, for each L in stability.levels)"
    )
    levels: list[int] = setting(
        [], "ticket levels of subjects=tickets (empty = the sparsest, prune.levels)")
    alphas: int = setting(30, "evenly spaced points on the path, both ends included")
    threshold: float = setting(
        0.02, "stable at k when the upper end of the 95% interval of the instability "
        "(highest error on the path minus the mean of its ends) is below it"
    )
    batchnorm: Literal["recompute", "interpolate"] = setting(
        "recompute", "BatchNorm moving statistics at each alpha: recompute (from "
        "stability.batchnorm_batches train batches, in training mode) or interpolate (blended "
        "like weights; interpolated networks collapse their activation variance)"
    )
    batchnorm_batches: int = setting(
        8, "train batches of eval.batch_size images (the first, in stored order) that "
        "recompute the BatchNorm statistics")
    train_images: int = setting(
        512, "train images (the first, in stored order) evaluated at every alpha beside val")

    def __post_init__(self) -> None:
        check_choices(self)
        require(set(self.subjects) <= set(STABILITY_SUBJECTS) and bool(self.subjects),
                "subjects", f"choose from {list(STABILITY_SUBJECTS)}, got {self.subjects}")
        require(all(k >= 0 for k in self.epochs), "epochs",
                f"rewind points are epochs, 0 or more; got {self.epochs}")
        require(all(level >= 1 for level in self.levels), "levels",
                f"ticket levels are 1 or more; got {self.levels}")
        require(self.alphas >= 2, "alphas", f"at least 2 (both ends), got {self.alphas}")
        require(0 < self.threshold < 1, "threshold", f"must be in (0, 1), got {self.threshold}")
        require(self.batchnorm_batches >= 1, "batchnorm_batches", "must be at least 1")
        require(self.train_images >= 0, "train_images", "must be 0 or more")

    def rewind_epochs(self, rewind: list[int]) -> list[int]:
        """The candidate rewind points (``rewind``, the job's, when none are given)."""
        return sorted(self.epochs or rewind)


@dataclass
class EvalSettings:
    batch_size: int = setting(256, "batch size of evaluation")
    shards: int = setting(0, "evaluation tasks for one model (0 = the cluster's task slots)")


# Settings that change where or how a run executes but not what it computes; they are left
# out of the run-directory hash so that, e.g., moving to a bigger cluster resumes the run.
EXECUTION_ONLY = (
    "run.output",
    "run.name",
    "run.master",
    "run.deterministic",
    "run.replicates",
    "run.lease_timeout",
    "grid.task_cpus",
    "grid.max_failures",
    "grid.reader_workers",
    "eval.batch_size",
    "eval.shards",
    "tracking.mlflow_uri",
    "tracking.experiment",
)


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
    early_bird: EarlyBirdSettings = section(EarlyBirdSettings)
    stability: StabilitySettings = section(StabilitySettings)
    tracking: TrackingSettings = section(TrackingSettings)

    # left out of the run directory's hash (pipeline.experiment.run_dir.run_name)
    execution_only: ClassVar[tuple[str, ...]] = EXECUTION_ONLY
