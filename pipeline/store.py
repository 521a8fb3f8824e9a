"""Artifact store over URLs: plain paths, ``file://``, ``hdfs://``, ``gs://`` and ``s3://``.

All I/O goes through :mod:`pyarrow.fs`; object stores through the fsspec implementations
(s3fs, gcsfs) that Petastorm reads them with, wrapped as a pyarrow file system, so that
endpoints and credentials come from the variables and files users already set
(``AWS_ENDPOINT_URL``, ``AWS_PROFILE``, ``STORAGE_EMULATOR_HOST``, application default
credentials; pyarrow 14's own S3 and GCS clients ignore the endpoint variables). Listings
are never cached: executors and the driver write the same run directory.

Writes are atomic: on file systems with a real rename (local, HDFS) the bytes go to a
hidden temporary name beside the target and are then moved into place; on object stores
(GCS, S3) an object only becomes visible once its upload completes, so a direct write is
already atomic. A reader therefore never sees half a file.
"""

from __future__ import annotations

import io
import json
import os
import posixpath
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

OBJECT_STORE_SCHEMES = ("gs", "gcs", "s3", "s3a")
COMPLETE_MARKER = "_COMPLETE"


def _object_store(url: str) -> tuple[pafs.FileSystem, str]:
    import fsspec

    scheme, path = url.split("://", 1)
    protocol = "gcs" if scheme in ("gs", "gcs") else "s3"
    fs = fsspec.filesystem(protocol, use_listings_cache=False)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path.rstrip("/")


class StoreError(OSError):
    """An artifact could not be read or written; the message names the URL."""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def normalize_url(url: str) -> str:
    """Plain paths become absolute ``file://`` URLs; ``s3a://`` becomes ``s3://``."""
    url = str(url)
    scheme = _scheme(url)
    if not scheme:
        return "file://" + str(Path(url).expanduser().resolve())
    if scheme == "s3a":
        return "s3://" + url.split("://", 1)[1]
    return url.rstrip("/") if len(url) > len(scheme) + 4 else url


def join(url: str, *parts: str) -> str:
    """Join path parts onto a URL with ``/``."""
    out = url.rstrip("/")
    for part in parts:
        out = f"{out}/{str(part).strip('/')}"
    return out


def local_path(url: str) -> str | None:
    """The local file-system path of a ``file://`` URL, else ``None``."""
    url = normalize_url(url)
    return url[len("file://"):] if url.startswith("file://") else None


class ArtifactStore:
    """Read and write artifacts below one root URL."""

    def __init__(self, root: str) -> None:
        self.root = normalize_url(root)
        self.scheme = _scheme(self.root)
        try:
            if self.scheme in OBJECT_STORE_SCHEMES:
                self.fs, self._root_path = _object_store(self.root)
            else:
                self.fs, self._root_path = pafs.FileSystem.from_uri(self.root)
        except Exception as exc:  # pyarrow raises several types for bad URIs
            raise StoreError(f"cannot open artifact store {self.root}: {exc}") from exc

    # -- paths ---------------------------------------------------------------------------
    def url(self, *parts: str) -> str:
        """Full URL of a path below the root."""
        return join(self.root, *parts)

    def path(self, *parts: str) -> str:
        """File-system path (as pyarrow sees it) of a path below the root."""
        return posixpath.join(self._root_path, *[str(p).strip("/") for p in parts])

    def child(self, *parts: str) -> ArtifactStore:
        """A store rooted at a sub-directory."""
        return ArtifactStore(self.url(*parts))

    # -- queries -------------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        info = self.fs.get_file_info(self.path(*parts))
        return info.type != pafs.FileType.NotFound

    def is_dir(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type == pafs.FileType.Directory

    def size(self, *parts: str) -> int:
        info = self.fs.get_file_info(self.path(*parts))
        if info.type != pafs.FileType.File:
            raise StoreError(f"{self.url(*parts)} is not a file")
        return int(info.size)

    def listdir(self, *parts: str) -> list[str]:
        """Names directly below a directory, sorted; hidden temporaries are skipped."""
        base = self.path(*parts)
        if self.fs.get_file_info(base).type == pafs.FileType.NotFound:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=False))
        names = [posixpath.basename(i.path.rstrip("/")) for i in infos]
        return sorted(n for n in names if not n.startswith(".tmp-"))

    # -- reads ---------------------------------------------------------------------------
    def read_bytes(self, *parts: str) -> bytes:
        try:
            with self.fs.open_input_stream(self.path(*parts)) as fh:
                return fh.read()
        except FileNotFoundError as exc:
            raise StoreError(f"{self.url(*parts)} does not exist") from exc

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode("utf-8")

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.read_text(*parts))

    # -- writes --------------------------------------------------------------------------
    def makedirs(self, *parts: str) -> None:
        self.fs.create_dir(self.path(*parts), recursive=True)

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Atomically write ``data`` to a path below the root; returns its URL."""
        target = self.path(*parts)
        parent = posixpath.dirname(target)
        if parent:
            self.fs.create_dir(parent, recursive=True)
        if self.scheme in OBJECT_STORE_SCHEMES:
            with self.fs.open_output_stream(target) as fh:
                fh.write(data)
            return self.url(*parts)
        tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(target)}")
        try:
            with self.fs.open_output_stream(tmp) as fh:
                fh.write(data)
            if self.fs.get_file_info(target).type == pafs.FileType.File:
                self.fs.delete_file(target)
            self.fs.move(tmp, target)
        except BaseException:
            if self.fs.get_file_info(tmp).type != pafs.FileType.NotFound:
                self.fs.delete_file(tmp)
            raise
        return self.url(*parts)

    def write_text(self, text: str, *parts: str) -> str:
        return self.write_bytes(text.encode("utf-8"), *parts)

    def write_json(self, obj: Any, *parts: str) -> str:
        return self.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str), *parts)

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Write ``data`` only if nothing is there yet; True when this call created it.

        Of several callers racing for one path exactly one wins where the store can create
        conditionally: local disks (a hard link onto the path fails if it exists), S3
        (``If-None-Match: *``) and GCS (``ifGenerationMatch=0``; objects under gcsfs's
        50 MiB single-upload size). HDFS through pyarrow has no such write: there it is a
        check then a write, and two callers in the same instant can both win.
        """
        target = self.path(*parts)
        parent = posixpath.dirname(target)
        if parent:
            self.fs.create_dir(parent, recursive=True)
        if self.scheme in OBJECT_STORE_SCHEMES:
            try:
                self.fs.handler.fs.pipe_file(target, data, mode="create")
            except FileExistsError:
                return False
            return True
        local = local_path(self.url(*parts))
        if local is None:
            if self.exists(*parts):
                return False
            self.write_bytes(data, *parts)
            return True
        tmp = posixpath.join(parent, f".tmp-{uuid.uuid4().hex}-{posixpath.basename(target)}")
        with open(tmp, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, local)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        return True

    @contextmanager
    def open_write(self, *parts: str) -> Iterator[io.BytesIO]:
        """Collect bytes in memory, then write them atomically when the block exits cleanly."""
        buffer = io.BytesIO()
        yield buffer
        self.write_bytes(buffer.getvalue(), *parts)

    def delete(self, *parts: str) -> None:
        """Remove a file or a directory tree; missing paths are ignored."""
        target = self.path(*parts)
        info = self.fs.get_file_info(target)
        if info.type == pafs.FileType.Directory:
            self.fs.delete_dir(target)
        elif info.type == pafs.FileType.File:
            self.fs.delete_file(target)

    def move(self, src: tuple[str, ...] | str, dst: tuple[str, ...] | str) -> None:
        """Rename a file or directory below the root."""
        src_parts = (src,) if isinstance(src, str) else src
        dst_parts = (dst,) if isinstance(dst, str) else dst
        self.fs.move(self.path(*src_parts), self.path(*dst_parts))

    # -- stage markers -------------------------------------------------------------------
    def is_complete(self, *parts: str) -> bool:
        """True when the stage directory has its completion marker (written last)."""
        return self.exists(*parts, COMPLETE_MARKER)

    def mark_complete(self, *parts: str, info: dict[str, Any] | None = None) -> None:
        self.write_json(info or {}, *parts, COMPLETE_MARKER)
