"""Experiment tracking: each run of the main job mirrored into MLflow from the driver."""
