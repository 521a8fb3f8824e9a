"""Turn ImageNet (class folders, the Kaggle layout or the original tars) or CIFAR-10/100 (the
official pickle releases) into Petastorm datasets.

    spark-submit jobs/ingest_imagenet.py --source SRC --output URL [--image-size N]
        [--layout auto|folders|kaggle|tars|cifar10|cifar100] [--cifar100-labels fine|coarse]
        [--classes N | --classes n01440764,n01443537] [--overwrite] [--config FILE.yaml]
        [--set key=value ...]

Flags are shorthands for settings; ``--set`` is applied after them and wins.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.config import ConfigError, help_text  # noqa: E402
from pipeline.data.settings import LAYOUTS, IngestSettings  # noqa: E402

PROG = "ingest_imagenet"


def classes_override(text: str) -> str:
    """``--classes 10`` → ``classes=10``; ``--classes a,b`` or ``"a b"`` → ``classes=[a, b]``."""
    text = text.strip()
    if text.isdigit():
        return f"classes={int(text)}"
    names = [n for n in text.replace(",", " ").split() if n]
    return f"classes=[{', '.join(names)}]"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Decode, repair and resize ImageNet into Petastorm Parquet datasets.",
        epilog=help_text(IngestSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--source", required=True, help="ImageNet root: path or URL")
    parser.add_argument("--output", required=True, help="output URL (train/, val/, classes.txt)")
    parser.add_argument("--image-size", type=int, help="stored image side N (default 224)")
    parser.add_argument("--layout", choices=LAYOUTS, help="source layout (default auto)")
    parser.add_argument("--cifar100-labels", choices=("fine", "coarse"),
                        help="cifar100: the 100 fine labels (default) or the 20 coarse ones")
    parser.add_argument("--classes", help="first N training synsets, or a comma-separated list")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--config", help="YAML file of settings")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = []
    if args.image_size is not None:
        overrides.append(f"image_size={args.image_size}")
    if args.layout is not None:
        overrides.append(f"layout={args.layout}")
    if args.cifar100_labels is not None:
        overrides.append(f"cifar100_labels={args.cifar100_labels}")
    if args.classes is not None:
        overrides.append(classes_override(args.classes))
    overrides.extend(args.set)

    from pipeline.config import load_config
    from pipeline.data.ingest import ingest_imagenet
    from pipeline.data.layouts import IngestError
    from pipeline.logs import setup_logging
    from pipeline.store import StoreError

    setup_logging()
    try:
        config = load_config(IngestSettings, args.config, overrides)
        result = ingest_imagenet(args.source, args.output, config, overwrite=args.overwrite)
    except (ConfigError, IngestError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
