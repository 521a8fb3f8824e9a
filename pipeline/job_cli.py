"""What the job scripts under ``jobs/`` share: which errors are the user's, and the summary
lines and exit status of a finished job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def settings_parser(prog: str, description: str, settings_cls: type,
                    config_help: str = "YAML file of settings (conf/local.yaml, ...)",
                    print_run_dir: bool = True) -> argparse.ArgumentParser:
    """A job's parser with ``--config``, ``--set`` (and ``--print-run-dir``); ``--help``
    lists every setting of ``settings_cls``."""
    from pipeline.config import help_text

    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=help_text(settings_cls),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting")
    if print_run_dir:
        parser.add_argument("--print-run-dir", action="store_true",
                            help="print the run directory these settings map to, and exit")
    return parser


def user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean bad settings or input: printed as one line, exit status 1."""
    from pipeline.config import ConfigError
    from pipeline.data.readers import DatasetError
    from pipeline.experiment.preflight import PreflightError
    from pipeline.experiment.run_lease import RunLeaseHeld
    from pipeline.store import StoreError

    return (ConfigError, PreflightError, DatasetError, StoreError, RunLeaseHeld)


def fail(prog: str, exc: Exception) -> int:
    print(f"{prog}: error: {exc}", file=sys.stderr)
    return 1


def finish(outputs: Mapping[str, str], rows: Sequence[Mapping[str, Any]]) -> int:
    """Print ``name: url`` for each output; exit status 3 (with the names) when a trained
    model failed, else 0."""
    for name, url in outputs.items():
        print(f"{name}: {url}")
    failed = [r["cell"] for r in rows if r.get("status") != "ok"]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; rerun to retry them",
              file=sys.stderr)
        return 3
    return 0
