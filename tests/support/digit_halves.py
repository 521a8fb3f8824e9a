"""The "two halves" data sets of the transfer tests: digits 0-4 and digits 5-9, ingested."""

from __future__ import annotations

from pathlib import Path

from pipeline.data.sample import SYNSETS

FIRST_HALF = SYNSETS[:5]
SECOND_HALF = SYNSETS[5:]


def ingest_halves(spark, root: Path, train_per_class: int = 30,  # noqa: ANN001
                  val_per_class: int = 10) -> tuple[str, str]:
    """URLs of the ingest outputs (32x32) of digits 0-4 and of digits 5-9."""
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.sample import make_sample_imagenet
    from pipeline.data.settings import IngestSettings

    make_sample_imagenet(str(root / "source"), train_per_class=train_per_class,
                         val_per_class=val_per_class, size=64)
    outputs = []
    for name, classes in (("first", FIRST_HALF), ("second", SECOND_HALF)):
        result = ingest_imagenet(str(root / "source"), str(root / name),
                                 IngestSettings(image_size=32, classes=list(classes)),
                                 spark=spark)
        outputs.append(result.output)
    return outputs[0], outputs[1]
