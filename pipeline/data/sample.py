"""A small real data set in the ImageNet class-folder layout, made from scikit-learn's digits.

``load_digits()`` ships 1,797 handwritten 8×8 digits with scikit-learn, so this works with no
network. Each digit is upscaled, given a random (seeded) foreground/background colour and
written as an RGB JPEG under ``train/<synset>/`` or ``val/<synset>/``; the ten synsets are
``n00000000`` … ``n00000009`` (label = digit). The split is deterministic: for each digit, its
first ``train_per_class`` images (in data-set order) go to train and the next
``val_per_class`` to val.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from pipeline.store import ArtifactStore

SYNSETS = tuple(f"n{digit:08d}" for digit in range(10))


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


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def split_indices(
    labels: np.ndarray, train_per_class: int, val_per_class: int
) -> dict[str, list[int]]:
    """Deterministic per-class split: first ``train_per_class`` to train, next to val."""
    out: dict[str, list[int]] = {"train": [], "val": []}
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        need = train_per_class + val_per_class
        if need > len(idx):
            raise ValueError(
                f"digit {digit} has only {len(idx)} images; asked for {train_per_class} train "
                f"+ {val_per_class} val"
            )
        out["train"].extend(int(i) for i in idx[:train_per_class])
        out["val"].extend(int(i) for i in idx[train_per_class:need])
    return out


def make_sample_imagenet(
    out: str,
    train_per_class: int = 30,
    val_per_class: int = 10,
    size: int = 64,
    seed: int = 0,
) -> dict[str, int]:
    """Write the sample tree at ``out`` (path or URL); returns image counts per split."""
    if size < 8:
        raise ValueError(f"size must be at least 8, got {size}")
    images, labels = load_digit_images()
    store = ArtifactStore(out)
    counts = {}
    for split, indices in split_indices(labels, train_per_class, val_per_class).items():
        for index in indices:
            rng = np.random.default_rng([seed, index])
            synset = SYNSETS[labels[index]]
            img = render_digit(images[index], size, size, rng, noise=4.0)
            store.write_bytes(jpeg_bytes(img), split, synset, f"{synset}_{index}.JPEG")
        counts[split] = len(indices)
    return counts
