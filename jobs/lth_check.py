"""Read finished runs against the lottery ticket hypothesis (Frankle & Carbin 2019).

    python jobs/lth_check.py RUN_DIR [RUN_DIR ...] [--output FILE]

For each run directory of jobs/prune_imagenet.py (path or URL): per rewind epoch, whether
tickets stay within 1 point of the level-0 reference down to 20% of the weights, whether
they beat random re-initialization at the sparsest level with at most 7% remaining (paired
95% interval above 0), and the early-stop epochs (pipeline/report/lth_check.py). Prints
Markdown; with --output also writes it there.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

PROG = "lth_check"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run directories")
    parser.add_argument("--output", help="also write the Markdown to this file")
    args = parser.parse_args(argv)

    from pipeline.report.lth_check import run_markdown
    from pipeline.store import StoreError

    try:
        text = "\n".join(run_markdown(run) for run in args.runs)
    except (StoreError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
