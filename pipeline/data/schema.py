"""The Petastorm Unischema of an ingested split."""

from __future__ import annotations

import numpy as np
from petastorm.codecs import CompressedImageCodec, ScalarCodec
from petastorm.unischema import Unischema, UnischemaField
from pyspark.sql.types import IntegerType, StringType

FIELDS = ("image", "label", "synset", "source")


def make_schema(image_size: int, jpeg_quality: int = 90) -> Unischema:
    """``image`` uint8 N×N×3 (JPEG), ``label`` int32, ``synset`` and ``source`` strings."""
    return Unischema(
        "ImageNetSchema",
        [
            UnischemaField(
                "image",
                np.uint8,
                (image_size, image_size, 3),
                CompressedImageCodec("jpeg", quality=jpeg_quality),
                False,
            ),
            UnischemaField("label", np.int32, (), ScalarCodec(IntegerType()), False),
            UnischemaField("synset", np.str_, (), ScalarCodec(StringType()), False),
            UnischemaField("source", np.str_, (), ScalarCodec(StringType()), False),
        ],
    )
