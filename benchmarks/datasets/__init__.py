"""Inputs shared by several benchmarks: image trees, ingested datasets, prepared runs."""
