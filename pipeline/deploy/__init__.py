"""Deployment helpers: Spark properties for Dataproc and EMR clusters."""
