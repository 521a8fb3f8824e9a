"""Results table, statistics over replicates, matplotlib figures and report.md of a run."""

from pipeline.report.statistics import paired_comparisons, summarize
from pipeline.report.table import REQUIRED_COLUMNS, results_frame
from pipeline.report.writer import write_report

__all__ = ["REQUIRED_COLUMNS", "paired_comparisons", "results_frame", "summarize",
           "write_report"]
