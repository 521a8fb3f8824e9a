"""lottery-spark: find lottery tickets for Keras MobileNetV2 with Spark, Elephas and Petastorm."""

from pipeline.tf_noise import install as _filter_tensorflow_import_noise

__version__ = "0.1.0"

_filter_tensorflow_import_noise()
