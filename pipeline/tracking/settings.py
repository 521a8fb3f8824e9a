"""``tracking.*``: where the driver mirrors a run (off by default).

The run directory stays the record; the tracking server gets a copy made on the driver from
the rows, histories and files the job already wrote, so executors never reach the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from pipeline.config import require, setting

SCHEMES = ("file", "sqlite", "http", "https", "databricks")


@dataclass
class TrackingSettings:
    mlflow_uri: str = setting(
        "", "MLflow tracking URI (file:/path, sqlite:///path.db, http(s)://server or "
        "databricks); empty = no tracking. One parent run per run directory, a nested run per "
        "dense stage and per cell; a failing server only logs a warning"
    )
    experiment: str = setting("lottery-spark", "MLflow experiment the runs are logged under")

    def __post_init__(self) -> None:
        if self.mlflow_uri:
            scheme = urlparse(self.mlflow_uri).scheme
            require(scheme in SCHEMES, "mlflow_uri",
                    f"{self.mlflow_uri!r} is not a {', '.join(SCHEMES)} URI")
        require(bool(self.experiment.strip()), "experiment", "must not be empty")
