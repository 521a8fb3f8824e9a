"""Write a small real data set in the ImageNet class-folder layout from scikit-learn's digits.

python jobs/make_sample_imagenet.py OUT [--train-per-class N] [--val-per-class M|rest]
    [--size S] [--style colour|gray] [--shuffle] [--seed N]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402

from pipeline.data.sample import STYLES, make_sample_imagenet  # noqa: E402


def _count_or_rest(text: str) -> int | None:
    if text == "rest":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or 'rest', got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make_sample_imagenet",
        description="Digits as RGB JPEGs in OUT/{train,val}/n0000000D/ (10 synsets).",
    )
    parser.add_argument("out", help="output directory (path or URL)")
    parser.add_argument("--train-per-class", type=int, default=30, help="train images per digit")
    parser.add_argument("--val-per-class", type=_count_or_rest, default=10,
                        help="val images per digit, or 'rest' for all the digit's others")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--style", choices=STYLES, default="colour",
                        help="colour: random colours and noise (the demo); gray: plain "
                             "white-on-black digits, as MNIST")
    parser.add_argument("--seed", type=int, default=0, help="colour, noise and shuffle seed")
    parser.add_argument("--shuffle", action="store_true",
                        help="split each digit's images in an order drawn from the seed (the "
                             "data set's own order puts unseen writers in val)")
    args = parser.parse_args(argv)
    try:
        counts = make_sample_imagenet(
            args.out, args.train_per_class, args.val_per_class, args.size, args.seed,
            args.style, args.shuffle,
        )
    except ValueError as exc:
        print(f"make_sample_imagenet: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {counts['train']} train and {counts['val']} val images to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
