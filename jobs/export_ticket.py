"""Export one cell of a finished run as a plain Keras model (``.keras``) or a TFLite file.

    python jobs/export_ticket.py RUN_DIR CELL --output FILE.keras|FILE.tflite
        [--replicate I] [--slim] [--quantize int8] [--val-images N]

RUN_DIR is a run directory of jobs/prune_imagenet.py or of a transfer (local path or URL),
CELL a grid cell such as L2-k1-none. A ``.keras`` file opens with
``keras.saving.load_model`` alone: plain Conv2D, DepthwiseConv2D and Dense layers, every
pruned weight exactly 0.0. ``--slim`` first removes the channels the ticket left without
effect (a physically smaller network with the same outputs); a ``.tflite`` file stores its
weights sparse, and ``--quantize int8`` quantizes it (calibrated on train images). The export
is checked against the cell's own model on the first N val images (default 1000, 0 for
none); the figures are printed and written beside the file as FILE.json. FILE may be a URL.
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
    parser.add_argument("--output", required=True,
                        help="the .keras or .tflite file to write (path or URL)")
    parser.add_argument("--replicate", type=int, default=None,
                        help="replicate of a run with several (default 0)")
    parser.add_argument("--slim", action="store_true",
                        help="remove the channels that have no effect on the outputs")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="quantize a .tflite file to 8 bits")
    parser.add_argument("--val-images", type=int, default=1000,
                        help="check the export on this many val images (0: no check)")
    args = parser.parse_args(argv)

    from pipeline.config import ConfigError
    from pipeline.experiment.export import ExportError, export_cell
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        summary = export_cell(args.run, args.cell, args.output, replicate=args.replicate,
                              slim=args.slim, quantize=args.quantize,
                              val_images=args.val_images)
    except (ExportError, ConfigError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
