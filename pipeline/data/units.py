"""Units of ingest work that the driver plans and executors expand into image bytes.

Each unit names its bytes by the source root URL plus a relative path, so it is a few
strings and ints: the driver never holds image data. Executors open the file system once
per root (cached) and read through :mod:`pyarrow.fs`.
"""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.fs as pafs

from pipeline.data import tars
from pipeline.store import ArtifactStore


@functools.lru_cache(maxsize=16)
def store_for(root: str) -> ArtifactStore:
    """One ArtifactStore (and file-system client) per source root and process."""
    return ArtifactStore(root)


@dataclass(frozen=True)
class Payload:
    """Raw bytes of one image with its identity and label."""

    source: str
    synset: str
    label: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FileItem:
    """One image file: ``root/folder/name``, reported as ``prefix + name``.

    Only ``name`` is per file; the other strings are shared by all files of a folder, which
    keeps a listing of ImageNet's 1.28M files small on the driver (and in pickled chunks).
    """

    root: str
    folder: str
    prefix: str
    name: str
    synset: str
    label: int

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.name}"

    @property
    def source(self) -> str:
        return self.prefix + self.name


@dataclass(frozen=True)
class FileChunk:
    """The image files one task decodes."""

    items: tuple[FileItem, ...]

    def payloads(self, buffer_bytes: int) -> Iterator[Payload]:
        for item in self.items:
            data = store_for(item.root).read_bytes(item.rel)
            yield Payload(item.source, item.synset, item.label, data)


def list_folder(root: str, folder: str, prefix: str, synset: str, label: int) -> list[FileItem]:
    """The image files directly in ``root/folder`` (hidden names and sub-folders skipped)."""
    store = store_for(root)
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(folder), recursive=False))
    names = sorted(posixpath.basename(i.path) for i in infos if i.type == pafs.FileType.File)
    return [
        FileItem(root, folder, prefix, n, synset, label) for n in names if not n.startswith(".")
    ]


@dataclass(frozen=True)
class ClassTar:
    """A class tar stored inside another tar (ILSVRC2012_img_train.tar); one task streams it."""

    root: str
    rel: str
    offset: int
    size: int
    prefix: str
    synset: str
    label: int

    def payloads(self, buffer_bytes: int) -> Iterator[Payload]:
        store = store_for(self.root)
        with store.fs.open_input_file(store.path(self.rel)) as fh:
            for name, data in tars.stream_members(fh, self.offset, self.size, buffer_bytes):
                yield Payload(self.prefix + name, self.synset, self.label, data)


@dataclass(frozen=True)
class LabelledEntry:
    """A tar member with the label the driver assigned to it."""

    entry: tars.TarEntry
    synset: str
    label: int


@dataclass(frozen=True)
class TarSlice:
    """Neighbouring members of one tar (val images), read by offset in one task."""

    root: str
    rel: str
    members: tuple[LabelledEntry, ...]

    def payloads(self, buffer_bytes: int) -> Iterator[Payload]:
        store = store_for(self.root)
        by_entry = {m.entry: m for m in self.members}
        entries = sorted(by_entry, key=lambda e: e.offset)
        with store.fs.open_input_file(store.path(self.rel)) as fh:
            for entry, data in tars.read_entries(fh, entries, buffer_bytes):
                member = by_entry[entry]
                yield Payload(entry.name, member.synset, member.label, data)


@dataclass(frozen=True)
class CifarBatch:
    """One pickled CIFAR batch; one task turns its selected images into PNG payloads (the
    strict decode then treats them like any other image file)."""

    root: str
    layout: str
    folder: str | None
    archive: str | None
    name: str
    label_kind: str
    selected: tuple[int, ...]  # original label of each output class, in output order
    classes: tuple[str, ...]

    def payloads(self, buffer_bytes: int) -> Iterator[Payload]:
        import io

        from PIL import Image

        from pipeline.data.cifar import RELEASES, CifarSource

        release = next(r for r in RELEASES if r.layout == self.layout)
        source = CifarSource(self.root, release, self.folder, self.archive)
        images, labels = source.batch(self.name, self.label_kind)
        new_label = {original: i for i, original in enumerate(self.selected)}
        where = source.where(self.name)
        for index, (image, original) in enumerate(zip(images, labels, strict=True)):
            label = new_label.get(int(original))
            if label is None:
                continue
            buffer = io.BytesIO()
            Image.fromarray(image, "RGB").save(buffer, "PNG")
            yield Payload(f"{where}#{index}", self.classes[label], label, buffer.getvalue())


Unit = FileChunk | ClassTar | TarSlice | CifarBatch
