"""A small real data set in the ImageNet class-folder layout, made from scikit-learn's digits.

``load_digits()`` ships 1,797 handwritten 8×8 digits with scikit-learn, so this works with no
network. Each digit is upscaled and written as an RGB JPEG under ``train/<synset>/`` or
``val/<synset>/``; the ten synsets are ``n00000000`` … ``n00000009`` (label = digit). In the
``colour`` style (the demo's) each image gets a random (seeded) foreground/background colour
and a little noise, so that the colour channels carry something; in the ``gray`` style it is
the plain digit, white on black with R = G = B, as MNIST is (the small networks of the
lottery-ticket paper). The split is deterministic: for each digit, its first
``train_per_class`` images go to train and the next ``val_per_class`` (None: all the others)
to val, in data-set order or, with ``shuffle``, in an order drawn from the seed. The data
set's own order groups writers, so an ordered val set holds writers the train set never
saw (LeNet-300-100 reaches about 93% there, 97% on a shuffled split).
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image

from pipeline.store import ArtifactStore

SYNSETS = tuple(f"n{digit:08d}" for digit in range(10))
STYLES = ("colour", "gray")


def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """The digits as float images in [0, 1] ``[n, 8, 8]`` and their int labels ``[n]``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.float64) / 16.0, digits.target.astype(np.int64)


def render_digit(
    digit: np.ndarray,
    width: int,
    height: int,
    rng: np.random.Generator,
    noise: float = 0.0,
) -> Image.Image:
    """Upscale one 8×8 digit to ``width``×``height`` RGB with random colours and optional noise."""
    gray = Image.fromarray((digit * 255).astype(np.uint8), "L")
    mask = np.asarray(gray.resize((width, height), Image.Resampling.BICUBIC), np.float64) / 255
    background = rng.uniform(0, 110, size=3)
    foreground = rng.uniform(145, 255, size=3)
    if rng.random() < 0.5:
        background, foreground = foreground, background
    pixels = background + mask[..., None] * (foreground - background)
    if noise:
        pixels = pixels + rng.normal(0.0, noise, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def render_gray_digit(digit: np.ndarray, size: int) -> Image.Image:
    """Upscale one 8×8 digit to ``size``×``size``, white on black, as RGB with R = G = B."""
    gray = Image.fromarray((digit * 255).astype(np.uint8), "L")
    return gray.resize((size, size), Image.Resampling.BICUBIC).convert("RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def split_indices(
    labels: np.ndarray, train_per_class: int, val_per_class: int | None,
    shuffle_seed: int | None = None,
) -> dict[str, list[int]]:
    """Deterministic per-class split: first ``train_per_class`` to train, the next
    ``val_per_class`` (None: all the rest) to val; each digit's images in data-set order or,
    with ``shuffle_seed``, permuted by it first."""
    out: dict[str, list[int]] = {"train": [], "val": []}
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        if shuffle_seed is not None:
            idx = np.random.default_rng([shuffle_seed, digit]).permutation(idx)
        rest = len(idx) - train_per_class if val_per_class is None else val_per_class
        need = train_per_class + max(rest, 0)
        if need > len(idx):
            raise ValueError(
                f"digit {digit} has only {len(idx)} images; asked for {train_per_class} train "
                f"+ {rest} val"
            )
        out["train"].extend(int(i) for i in idx[:train_per_class])
        out["val"].extend(int(i) for i in idx[train_per_class:need])
    return out


def make_sample_imagenet(
    out: str,
    train_per_class: int = 30,
    val_per_class: int | None = 10,
    size: int = 64,
    seed: int = 0,
    style: Literal["colour", "gray"] = "colour",
    shuffle: bool = False,
) -> dict[str, int]:
    """Write the sample tree at ``out`` (path or URL); returns image counts per split."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    images, labels = load_digit_images()
    store = ArtifactStore(out)
    counts = {}
    splits = split_indices(labels, train_per_class, val_per_class, seed if shuffle else None)
    for split, indices in splits.items():
        for index in indices:
            synset = SYNSETS[labels[index]]
            if style == "gray":
                img = render_gray_digit(images[index], size)
            else:
                img = render_digit(images[index], size, size,
                                   np.random.default_rng([seed, index]), noise=4.0)
            store.write_bytes(jpeg_bytes(img), split, synset, f"{synset}_{index}.JPEG")
        counts[split] = len(indices)
    return counts
