"""Reading tar archives in place through pyarrow random-access files.

Nothing is unpacked to local disk. The driver lists an archive's members (name, data offset,
size) by seeking from header to header; executors then read members by offset, or stream a
nested archive (an ImageNet class tar inside the train tar) from its byte range.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TarEntry:
    """A regular file inside a tar: its name and where its bytes are."""

    name: str
    offset: int
    size: int


class RangeReader(io.RawIOBase):
    """A seekable raw stream over ``[start, end)`` of a pyarrow random-access file."""

    def __init__(self, file: Any, start: int, end: int) -> None:
        self._file = file
        self._start = start
        self._end = end
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._end - self._start}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self._end - self._start - self._pos)
        if count <= 0:
            return 0
        data = self._file.read_at(count, self._start + self._pos)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class HeaderReader(io.RawIOBase):
    """Seekable raw stream tuned for walking tar headers over a remote file.

    tarfile reads a 512-byte header, then seeks past the member's data. When members are
    small (the 50,000 val images) the next header is close, so one read of ``window`` bytes
    serves many headers; when they are large (class tars of ~140 MB) only the header is read.
    That keeps both the number of requests and the bytes read small on object stores.
    """

    def __init__(self, file: Any, size: int, window: int) -> None:
        self._file = file
        self._size = size
        self._window = window
        self._pos = 0
        self._cache_start = 0
        self._cache = b""
        self._last_gap = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}
        target = max(0, base[whence] + offset)
        self._last_gap = abs(target - self._pos)
        self._pos = target
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        end = self._cache_start + len(self._cache)
        if not (self._cache_start <= self._pos and self._pos + want <= end):
            fetch = self._window if self._last_gap < self._window else want
            self._cache_start = self._pos
            self._cache = self._file.read_at(max(want, fetch), self._pos)
        begin = self._pos - self._cache_start
        data = self._cache[begin : begin + want]
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def list_members(file: Any, size: int, window: int = 4 << 20) -> list[TarEntry]:
    """Regular-file members of the tar in ``file`` (a pyarrow RandomAccessFile), in tar order."""
    raw = HeaderReader(file, size, window)
    entries = []
    with tarfile.open(fileobj=raw, mode="r:") as archive:  # type: ignore[call-overload]
        for member in archive:
            if member.isfile():
                entries.append(TarEntry(member.name, member.offset_data, member.size))
    return entries


def stream_members(
    file: Any, start: int, size: int, buffer_bytes: int
) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every regular file in the tar stored at ``[start, start+size)``."""
    stream = io.BufferedReader(RangeReader(file, start, start + size), buffer_bytes)
    with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            if not member.isfile():
                continue
            handle = archive.extractfile(member)
            yield member.name, handle.read() if handle is not None else b""


def read_entries(
    file: Any, entries: list[TarEntry], buffer_bytes: int
) -> Iterator[tuple[TarEntry, bytes]]:
    """Bytes of ``entries`` (sorted by offset, close together) read sequentially from ``file``."""
    if not entries:
        return
    start = entries[0].offset
    end = max(e.offset + e.size for e in entries)
    stream = io.BufferedReader(RangeReader(file, start, end), buffer_bytes)
    for entry in entries:
        stream.seek(entry.offset - start)
        yield entry, stream.read(entry.size)
