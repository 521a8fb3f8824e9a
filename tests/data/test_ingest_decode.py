"""Strict decoding, repair to RGB, and the shorter-side resize + centre crop (no Spark)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipeline.data.decode import RejectedImage, decode_rgb, prepare_image, resize_center_crop
from tests.support.ingest_trees import awkward_files, digit_jpeg


def _repaired_and_rejected():
    files, reasons = awkward_files()
    repaired = {n: d for n, d in files.items() if n not in reasons}
    rejected = {n: (files[n], r) for n, r in reasons.items()}
    return repaired, rejected


REPAIRED, REJECTED = _repaired_and_rejected()


@pytest.mark.parametrize("name", sorted(REPAIRED))
def test_awkward_images_are_repaired_to_rgb(name):
    out = prepare_image(REPAIRED[name], 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert out.std() > 5  # a real picture, not a blank


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_undecodable_files_are_rejected_with_a_reason(name):
    data, reason = REJECTED[name]
    with pytest.raises(RejectedImage) as info:
        prepare_image(data, 16)
    assert info.value.reason.startswith(reason)


def test_opencv_would_have_accepted_the_truncated_jpeg():
    import cv2

    data, _ = REJECTED["truncated.JPEG"]
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


def test_grayscale_becomes_equal_channels():
    img = decode_rgb(REPAIRED["gray.JPEG"])
    arr = np.asarray(img)
    assert img.mode == "RGB"
    assert np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2])


def test_transparency_is_composited_over_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 4, 8))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    arr = np.asarray(decode_rgb(buffer.getvalue()))
    assert tuple(arr[0, 0]) == (0, 0, 255)
    assert tuple(arr[0, 7]) == (255, 255, 255)


def test_cmyk_colours_survive():
    rgb = Image.new("RGB", (16, 16), (200, 30, 30))
    buffer = io.BytesIO()
    rgb.convert("CMYK").save(buffer, "JPEG", quality=95)
    arr = np.asarray(decode_rgb(buffer.getvalue())).astype(int)
    assert abs(arr[..., 0].mean() - 200) < 12 and arr[..., 2].mean() < 60


def test_resize_center_crop_matches_resize_then_crop():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (60, 100, 3), dtype=np.uint8))
    ours = resize_center_crop(img, 30).astype(int)
    resized = img.resize((50, 30), Image.Resampling.BILINEAR)
    reference = np.asarray(resized.crop((10, 0, 40, 30))).astype(int)
    assert ours.shape == (30, 30, 3)
    assert np.abs(ours - reference).mean() < 2.0


def test_portrait_images_crop_vertically():
    img = Image.new("RGB", (20, 60), (0, 0, 0))
    img.paste((255, 255, 255), (0, 20, 20, 40))  # white middle third
    out = resize_center_crop(img, 10)
    assert out.min() > 200  # only the centre square is kept


def test_jpeg_draft_gives_the_same_picture():
    data = digit_jpeg(3, width=400, height=300)
    fast = prepare_image(data, 32, draft=True).astype(int)
    full = prepare_image(data, 32, draft=False).astype(int)
    assert np.abs(fast - full).mean() < 3.0
