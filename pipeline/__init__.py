"""lottery-spark: find lottery tickets for Keras MobileNetV2 with Spark, Elephas and Petastorm."""

__version__ = "0.1.0"
