"""Settings of the ingest job; every field is a ``--set key=value`` override."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from pipeline.config import check_choices, require, setting

Layout = Literal["auto", "folders", "kaggle", "tars", "cifar10", "cifar100"]
LAYOUTS: tuple[str, ...] = get_args(Layout)


@dataclass
class IngestSettings:
    image_size: int = setting(
        224, "side N of the stored N×N images (shorter side resized, centre crop)"
    )
    layout: Layout = setting(
        "auto", "source layout: auto, folders, kaggle, tars, cifar10 or cifar100"
    )
    classes: int | list[str] | None = setting(
        None, "restrict to the first N sorted training synsets, or to a list of synsets"
    )
    jpeg_quality: int = setting(90, "JPEG quality of the stored images (petastorm codec)")
    row_group_size_mb: int = setting(
        32, "Parquet row-group size: the unit of reader shuffling, sharding and worker memory"
    )
    images_per_task: int = setting(
        1000, "at most this many images per decode task (file layouts); one output file each"
    )
    tasks_per_core: int = setting(3, "at least this many decode tasks per Spark core, for balance")
    mix_classes: bool = setting(
        True, "spread classes over output files (tars: costs one shuffle of the encoded rows)"
    )
    jpeg_draft: bool = setting(
        True, "let libjpeg decode large JPEGs at a reduced scale (never below the target size)"
    )
    val_labels_file: str = setting(
        "validation_labels.txt",
        "tars layout: synset-per-line val labels, in sorted file-name order",
    )
    cifar100_labels: Literal["fine", "coarse"] = setting(
        "fine", "cifar100 layout: the 100 fine labels or the 20 coarse superclasses"
    )
    tar_read_buffer_mb: int = setting(4, "read-ahead buffer when streaming tar members")
    progress_interval_s: float = setting(30.0, "seconds between progress log lines")

    def __post_init__(self) -> None:
        check_choices(self)
        require(self.image_size >= 8, "image_size", f"must be at least 8, got {self.image_size}")
        require(1 <= self.jpeg_quality <= 100, "jpeg_quality",
                f"must be in 1..100, got {self.jpeg_quality}")
        for key in ("row_group_size_mb", "images_per_task", "tasks_per_core", "tar_read_buffer_mb"):
            require(getattr(self, key) >= 1, key, f"must be at least 1, got {getattr(self, key)}")
        if isinstance(self.classes, int):
            require(self.classes >= 1, "classes", f"must be at least 1, got {self.classes}")
