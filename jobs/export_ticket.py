"""Export one cell of a finished run as a plain Keras model (``.keras``).

    python jobs/export_ticket.py RUN_DIR CELL --output FILE.keras [--replicate I]

RUN_DIR is a run directory of jobs/prune_imagenet.py (local path or URL), CELL a grid cell
such as L2-k1-none. The file opens with ``keras.saving.load_model`` alone: plain Conv2D,
DepthwiseConv2D and Dense layers, every pruned weight exactly 0.0. FILE may be a URL.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

PROG = "export_ticket"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR", help="run directory (local path or URL)")
    parser.add_argument("cell", metavar="CELL", help="grid cell, e.g. L2-k1-none")
    parser.add_argument("--output", required=True, help="the .keras file to write (path or URL)")
    parser.add_argument("--replicate", type=int, default=None,
                        help="replicate of a run with several (default 0)")
    args = parser.parse_args(argv)

    from pipeline.config import ConfigError
    from pipeline.experiment.export import ExportError, export_keras
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        url = export_keras(args.run, args.cell, args.output, replicate=args.replicate)
    except (ExportError, ConfigError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"model: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
