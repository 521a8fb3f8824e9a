"""Strict image decoding, repair to RGB, and shorter-side resize with a centre crop.

OpenCV decodes a truncated JPEG without complaint, so decoding uses Pillow with
``LOAD_TRUNCATED_IMAGES`` off and a full ``load()``: an image is either decoded completely
or rejected with a reason. CMYK, grayscale, palette and alpha images (and PNGs saved under
a ``.JPEG`` name, which Pillow recognises by content) are repaired to RGB and kept.
"""

from __future__ import annotations

import io
import math
import warnings

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WIDE_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_BACKGROUND = (255, 255, 255)


class RejectedImage(ValueError):
    """The bytes are not a fully decodable image; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _open_strict(data: bytes) -> Image.Image:
    if not data:
        raise RejectedImage("empty file")
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise RejectedImage("not an image: format not recognised") from exc
    except Image.DecompressionBombError as exc:
        raise RejectedImage(f"too large: {exc}") from exc
    except Exception as exc:  # any parser failure is a property of the data
        raise RejectedImage(f"unreadable header: {exc}") from exc


def _load(img: Image.Image) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # EXIF/ICC chatter is not a decoding error
            img.load()
    except OSError as exc:
        text = str(exc)
        kind = "truncated" if "truncated" in text else "corrupt"
        raise RejectedImage(f"{kind}: {text}") from exc
    except Exception as exc:
        raise RejectedImage(f"corrupt: {exc}") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Repair any Pillow mode to RGB; transparency is composited over white."""
    if img.mode == "RGB":
        return img
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in _WIDE_GRAY_MODES:
        # Pillow's I/F -> L conversion clips instead of scaling.
        values = np.asarray(img, dtype=np.float64)
        top = values.max() or 1.0
        img = Image.fromarray(np.clip(values * (255.0 / top), 0, 255).astype(np.uint8), "L")
    return img.convert("RGB")


def decode_rgb(data: bytes, min_side: int | None = None) -> Image.Image:
    """Fully decode ``data`` to an RGB image, or raise :class:`RejectedImage`.

    With ``min_side``, a JPEG may be decoded at a reduced DCT scale whose shorter side is
    still at least ``min_side`` (much faster for large images, same result after resizing).
    """
    img = _open_strict(data)
    if min_side and img.format == "JPEG":
        width, height = img.size
        scale = min_side / min(width, height)
        if scale < 1:
            img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    _load(img)
    try:
        return to_rgb(img)
    except Exception as exc:
        raise RejectedImage(f"cannot convert mode {img.mode} to RGB: {exc}") from exc


def resize_center_crop(img: Image.Image, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the centre: uint8 array ``[size, size, 3]``.

    Resizing only the centred square of the source gives the same pixels as resizing the
    whole image and cropping afterwards, for less work.
    """
    width, height = img.size
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    box = (left, top, left + side, top + side)
    out = img.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(out, dtype=np.uint8)


def prepare_image(data: bytes, size: int, draft: bool = True) -> np.ndarray:
    """Bytes of any supported image → RGB uint8 ``[size, size, 3]``; raises RejectedImage."""
    img = decode_rgb(data, min_side=size if draft else None)
    return resize_center_crop(img, size)
