"""Results table, matplotlib figures and report.md of a run."""

from pipeline.report.table import REQUIRED_COLUMNS, results_frame
from pipeline.report.writer import write_report

__all__ = ["REQUIRED_COLUMNS", "results_frame", "write_report"]
