"""CIFAR-10 and CIFAR-100 in their official Python-pickle releases, for the ingest.

A release is either its folder (``cifar-10-batches-py/``: ``data_batch_1..5``,
``test_batch``, ``batches.meta``; ``cifar-100-python/``: ``train``, ``test``, ``meta``) or
its archive (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``), found in the source
directory or given as the source itself. Each batch is a pickled dict with bytes keys:
``data`` is N×3072 uint8, the R, G and B planes of a 32×32 image in row-major order, and
the labels are ``labels`` (CIFAR-10) or ``fine_labels`` / ``coarse_labels`` (CIFAR-100).
CIFAR's test split becomes ``val``; the class names come from the meta file.

The driver checks every batch (:meth:`CifarSource.check`) before anything is written, so a
truncated pickle, a batch of the wrong shape or a missing meta file stops the ingest with
one line naming the file; the executors then read one batch each.
"""

from __future__ import annotations

import io
import pickle
import posixpath
import tarfile
from dataclasses import dataclass

import numpy as np

from pipeline.store import ArtifactStore

SIDE = 32
PIXELS = SIDE * SIDE * 3


class CifarError(ValueError):
    """A CIFAR file is missing or not in the official format; the message names it."""


@dataclass(frozen=True)
class CifarRelease:
    layout: str
    folder: str
    archive: str
    train: tuple[str, ...]
    test: str
    meta: str
    names_keys: tuple[tuple[str, bytes], ...]  # (label kind, meta key)
    labels_keys: tuple[tuple[str, bytes], ...]  # (label kind, batch key)

    def names_key(self, kind: str) -> bytes:
        return dict(self.names_keys)[kind]

    def labels_key(self, kind: str) -> bytes:
        return dict(self.labels_keys)[kind]


CIFAR10 = CifarRelease(
    "cifar10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
    tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta",
    (("fine", b"label_names"),), (("fine", b"labels"),))
CIFAR100 = CifarRelease(
    "cifar100", "cifar-100-python", "cifar-100-python.tar.gz", ("train",), "test", "meta",
    (("fine", b"fine_label_names"), ("coarse", b"coarse_label_names")),
    (("fine", b"fine_labels"), ("coarse", b"coarse_labels")))
RELEASES = (CIFAR10, CIFAR100)
LABEL_KINDS = ("fine", "coarse")


@dataclass(frozen=True)
class CifarSource:
    """A release below ``root``: its folder at ``folder`` or its archive at ``archive``
    (paths relative to ``root``; ``""`` is the root itself)."""

    root: str
    release: CifarRelease
    folder: str | None = None
    archive: str | None = None

    def where(self, name: str) -> str:
        """The file's URL (or archive URL and member) for messages and row sources."""
        if self.archive is not None:
            return f"{posixpath.join(self.root, self.archive)}:{self.release.folder}/{name}"
        return posixpath.join(self.root, self.folder or "", name)

    def read(self, name: str) -> bytes:
        store = ArtifactStore(self.root)
        if self.archive is None:
            rel = posixpath.join(self.folder, name) if self.folder else name
            if not store.exists(rel):
                raise CifarError(f"{self.where(name)} is missing")
            return store.read_bytes(rel)
        member = f"{self.release.folder}/{name}"
        try:
            # compression=None: pyarrow would otherwise gunzip it already (the .gz suffix)
            with store.fs.open_input_stream(store.path(self.archive), compression=None) as fh, \
                    tarfile.open(fileobj=fh, mode="r|gz") as tar:
                for info in tar:
                    if info.name.lstrip("./") == member and info.isfile():
                        return tar.extractfile(info).read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise CifarError(f"{self.where(name)}: unreadable archive ({exc})") from None
        raise CifarError(f"{self.where(name)} is missing")

    def label_names(self, kind: str) -> list[str]:
        meta = self._unpickle(self.release.meta)
        key = self.release.names_key(kind)
        names = meta.get(key)
        if not isinstance(names, list) or not names:
            raise CifarError(f"{self.where(self.release.meta)} has no {key.decode()} list")
        return [n.decode() if isinstance(n, bytes) else str(n) for n in names]

    def batch(self, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Images uint8 ``[N, 32, 32, 3]`` and labels int64 ``[N]`` of batch ``name``."""
        data = self._unpickle(name)
        key = self.release.labels_key(kind)
        pixels, labels = data.get(b"data"), data.get(key)
        if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or \
                pixels.ndim != 2 or pixels.shape[1] != PIXELS:
            shape = getattr(pixels, "shape", None)
            raise CifarError(f"{self.where(name)}: data must be an N×{PIXELS} uint8 array, "
                             f"got {shape}")
        if labels is None or len(labels) != len(pixels):
            raise CifarError(f"{self.where(name)}: {key.decode()} must hold {len(pixels)} "
                             f"labels, got {None if labels is None else len(labels)}")
        images = pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
        return images, np.asarray(labels, dtype=np.int64)

    def check(self, kind: str) -> list[str]:
        """Read the meta file and every batch; returns the class names. Raises CifarError."""
        names = self.label_names(kind)
        for name in (*self.release.train, self.release.test):
            _, labels = self.batch(name, kind)
            if len(labels) and (labels.min() < 0 or labels.max() >= len(names)):
                raise CifarError(f"{self.where(name)}: labels outside 0..{len(names) - 1}")
        return names

    def _unpickle(self, name: str) -> dict:
        raw = self.read(name)
        try:
            data = _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
        except _RefusedGlobal as exc:
            raise CifarError(f"{self.where(name)}: refused, the pickle asks for {exc}, which "
                             "no official CIFAR file needs") from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
            raise CifarError(f"{self.where(name)}: not a readable pickle "
                             f"({type(exc).__name__}: {exc})") from None
        if not isinstance(data, dict):
            raise CifarError(f"{self.where(name)}: expected a pickled dict")
        return data


# What the official files reference: numpy's array reconstruction and dtypes. A pickle can
# run arbitrary code on load, and ingested files come from elsewhere.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
}


class _RefusedGlobal(Exception):
    pass


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)


def find_release(store: ArtifactStore, layout: str | None = None) -> CifarSource | None:
    """The CIFAR release at ``store`` (its folder or archive inside it, or the folder
    itself), restricted to ``layout`` when given; None when there is none."""
    for release in RELEASES:
        if layout not in (None, release.layout):
            continue
        if store.is_dir(release.folder):
            return CifarSource(store.root, release, folder=release.folder)
        if store.exists(release.train[0]) and store.exists(release.test):
            return CifarSource(store.root, release, folder="")
        if store.exists(release.archive):
            return CifarSource(store.root, release, archive=release.archive)
    return None
