"""Recognising an ImageNet source layout and planning the work, on the driver.

Five layouts are supported:

* ``folders``: ``SRC/train/<wnid>/*`` and ``SRC/val/<wnid>/*``;
* ``kaggle``: ``SRC/ILSVRC/Data/CLS-LOC/{train/<wnid>, val}`` with ``SRC/LOC_val_solution.csv``
  (and optionally ``SRC/LOC_synset_mapping.txt``);
* ``tars``: ``SRC/ILSVRC2012_img_train.tar`` (one tar per class inside) and
  ``SRC/ILSVRC2012_img_val.tar`` with a synset-per-line labels file in sorted file-name order;
* ``cifar10`` / ``cifar100``: the official pickle releases, as a folder or a ``.tar.gz``
  (:mod:`pipeline.data.cifar`); their class names take the place of synsets.

The driver only lists directories and tar headers and reads the small label files; all
label problems (a val image with no label) are found here, before any Spark work starts.
"""

from __future__ import annotations

import csv
import io
import logging
import posixpath
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow.fs as pafs

from pipeline.data import tars
from pipeline.data.cifar import CIFAR10, CIFAR100, CifarError, find_release
from pipeline.data.units import (
    CifarBatch,
    ClassTar,
    FileChunk,
    FileItem,
    LabelledEntry,
    TarSlice,
    list_folder,
)
from pipeline.store import ArtifactStore, StoreError, normalize_url

log = logging.getLogger(__name__)

KAGGLE_BASE = "ILSVRC/Data/CLS-LOC"
KAGGLE_VAL_CSV = "LOC_val_solution.csv"
KAGGLE_MAPPING = "LOC_synset_mapping.txt"
TRAIN_TAR = "ILSVRC2012_img_train.tar"
VAL_TAR = "ILSVRC2012_img_val.tar"
SPLITS = ("train", "val")


class IngestError(ValueError):
    """A problem with the source, the labels or the output; the message says which."""


@dataclass
class SplitPlan:
    """What one split is made of: listed image files, or class tars and tar members."""

    files: list[FileItem] = field(default_factory=list)
    class_tars: list[ClassTar] = field(default_factory=list)
    tar_members: list[LabelledEntry] = field(default_factory=list)
    tar_rel: str = ""
    cifar_batches: list[CifarBatch] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.files or self.class_tars or self.tar_members or self.cifar_batches)


@dataclass
class IngestPlan:
    source: str
    layout: str
    classes: list[str]
    splits: dict[str, SplitPlan]

    def file_chunks(self, split: str, count: int, mix: bool, seed: int = 0) -> list[FileChunk]:
        """Cut a split's files into ``count`` tasks; ``mix`` shuffles classes across them."""
        files = list(self.splits[split].files)
        if not files:
            return []
        if mix:
            random.Random(seed).shuffle(files)
        count = max(1, min(count, len(files)))
        step = -(-len(files) // count)
        return [FileChunk(tuple(files[i : i + step])) for i in range(0, len(files), step)]

    def tar_slices(self, split: str, count: int) -> list[TarSlice]:
        """Cut a split's tar members into ``count`` runs of neighbours (by offset)."""
        plan = self.splits[split]
        members = sorted(plan.tar_members, key=lambda m: m.entry.offset)
        if not members:
            return []
        count = max(1, min(count, len(members)))
        step = -(-len(members) // count)
        return [
            TarSlice(self.source, plan.tar_rel, tuple(members[i : i + step]))
            for i in range(0, len(members), step)
        ]


# -- listing helpers -----------------------------------------------------------------------
def _entries(store: ArtifactStore, rel: str) -> list[pafs.FileInfo]:
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(rel), recursive=False))
    return [i for i in infos if not posixpath.basename(i.path).startswith(".")]


def _subdirs(store: ArtifactStore, rel: str) -> list[str]:
    return sorted(
        posixpath.basename(i.path)
        for i in _entries(store, rel)
        if i.type == pafs.FileType.Directory
    )


def _files(store: ArtifactStore, rel: str) -> list[str]:
    return sorted(
        posixpath.basename(i.path) for i in _entries(store, rel) if i.type == pafs.FileType.File
    )


def select_classes(available: list[str], spec: int | list[str] | None) -> list[str]:
    """The sorted synsets to ingest: all, the first N, or a given list."""
    available = sorted(available)
    if spec is None:
        return available
    if isinstance(spec, int):
        if spec > len(available):
            raise IngestError(
                f"classes={spec} but the source has only {len(available)} training synsets"
            )
        return available[:spec]
    known = set(available)
    unknown = [s for s in spec if s not in known]
    if unknown:
        raise IngestError(f"class {unknown[0]} is not a training synset of the source")
    return sorted(set(spec))


# -- detection -----------------------------------------------------------------------------
def open_source(source: str) -> ArtifactStore:
    """The source as a store; missing, non-directory or empty sources are IngestErrors."""
    try:
        store = ArtifactStore(source)
        info = store.fs.get_file_info(store.path())
    except (StoreError, OSError) as exc:
        raise IngestError(f"cannot open source {source}: {exc}") from exc
    if info.type == pafs.FileType.NotFound:
        raise IngestError(f"source {source} does not exist")
    if info.type != pafs.FileType.Directory:
        raise IngestError(f"source {source} is not a directory")
    if not _entries(store, ""):
        raise IngestError(f"source {source} is empty")
    return store


def detect_layout(store: ArtifactStore) -> str:
    release = find_release(store)
    if release is not None:
        return release.release.layout
    if store.is_dir(KAGGLE_BASE):
        return "kaggle"
    if store.exists(TRAIN_TAR):
        return "tars"
    if store.is_dir("train"):
        return "folders"
    raise IngestError(
        f"unrecognised layout in {store.root}: expected train/ and val/ class folders, "
        f"{KAGGLE_BASE}/ (Kaggle), {TRAIN_TAR} (tars) or a CIFAR release "
        f"({CIFAR10.folder}/, {CIFAR10.archive}, {CIFAR100.folder}/, {CIFAR100.archive})"
    )


def _require(store: ArtifactStore, rel: str, layout: str, what: str, is_dir: bool = True) -> None:
    ok = store.is_dir(rel) if is_dir else store.exists(rel)
    if not ok:
        raise IngestError(f"{layout} layout: {what} {store.url(rel)} not found")


# -- planners ------------------------------------------------------------------------------
def _list_classes(
    store: ArtifactStore, rel: str, classes: list[str], present: set[str] | None = None
) -> list[FileItem]:
    """Files of the class folders ``rel/<synset>``; labels index ``classes``.

    Only paths are listed (never contents), one folder per request, several requests at a
    time because remote listings are latency-bound.
    """
    jobs = [
        (store.root, f"{rel}/{s}", f"{s}/", s, label)
        for label, s in enumerate(classes)
        if present is None or s in present
    ]
    with ThreadPoolExecutor(max_workers=16) as pool:
        listed = pool.map(lambda job: list_folder(*job), jobs)
        return [item for items in listed for item in items]


def _train_synsets(store: ArtifactStore, rel: str, layout: str) -> list[str]:
    synsets = _subdirs(store, rel)
    if not synsets:
        raise IngestError(f"{layout} layout: no class folders under {store.url(rel)}")
    return synsets


def plan_folders(store: ArtifactStore, spec: int | list[str] | None) -> IngestPlan:
    _require(store, "train", "folders", "directory")
    _require(store, "val", "folders", "directory")
    available = _train_synsets(store, "train", "folders")
    classes = select_classes(available, spec)
    loose_train = _files(store, "train")
    if loose_train:
        log.warning(
            "ignoring %d files directly under train/ (not in a class folder)", len(loose_train)
        )
    loose_val = _files(store, "val")
    if loose_val:
        raise IngestError(f"val image val/{loose_val[0]} has no label (not in a class folder)")
    known = set(available)
    val_synsets = _subdirs(store, "val")
    for synset in val_synsets:
        if synset not in known:
            raise IngestError(
                f"val images in val/{synset} have no label: {synset} is not a training synset"
            )
    return IngestPlan(
        store.root,
        "folders",
        classes,
        {
            "train": SplitPlan(files=_list_classes(store, "train", classes)),
            "val": SplitPlan(files=_list_classes(store, "val", classes, set(val_synsets))),
        },
    )


def _read_kaggle_labels(store: ArtifactStore) -> dict[str, str]:
    text = store.read_text(KAGGLE_VAL_CSV)
    labels = {}
    for row in csv.DictReader(io.StringIO(text)):
        try:
            image_id, prediction = row["ImageId"], row["PredictionString"]
        except KeyError as exc:
            raise IngestError(
                f"{KAGGLE_VAL_CSV}: expected columns ImageId,PredictionString"
            ) from exc
        tokens = (prediction or "").split()
        if tokens:
            labels[image_id.strip()] = tokens[0]
    return labels


def plan_kaggle(store: ArtifactStore, spec: int | list[str] | None) -> IngestPlan:
    train_rel, val_rel = f"{KAGGLE_BASE}/train", f"{KAGGLE_BASE}/val"
    _require(store, train_rel, "kaggle", "directory")
    _require(store, val_rel, "kaggle", "directory")
    _require(store, KAGGLE_VAL_CSV, "kaggle", "labels file", is_dir=False)
    available = _train_synsets(store, train_rel, "kaggle")
    if store.exists(KAGGLE_MAPPING):
        mapped = {
            line.split()[0] for line in store.read_text(KAGGLE_MAPPING).splitlines() if line.strip()
        }
        extra = [s for s in available if s not in mapped]
        if extra:
            log.warning(
                "%d training synsets are not in %s (e.g. %s)", len(extra), KAGGLE_MAPPING, extra[0]
            )
    classes = select_classes(available, spec)
    labels_of = {s: i for i, s in enumerate(classes)}
    known = set(available)
    val_labels = _read_kaggle_labels(store)
    files = []
    for name in _files(store, val_rel):
        image_id = posixpath.splitext(name)[0]
        synset = val_labels.get(image_id)
        if synset is None:
            raise IngestError(f"val image {name} has no label in {KAGGLE_VAL_CSV}")
        if synset not in known:
            raise IngestError(f"val image {name} has no label: {synset} is not a training synset")
        if synset in labels_of:
            files.append(FileItem(store.root, val_rel, "", name, synset, labels_of[synset]))
    return IngestPlan(
        store.root,
        "kaggle",
        classes,
        {
            "train": SplitPlan(files=_list_classes(store, train_rel, classes)),
            "val": SplitPlan(files=files),
        },
    )


def _list_tar(store: ArtifactStore, rel: str, window: int) -> list[tars.TarEntry]:
    try:
        with store.fs.open_input_file(store.path(rel)) as fh:
            return tars.list_members(fh, fh.size(), window)
    except Exception as exc:  # tarfile.ReadError and friends: a broken archive is user data
        raise IngestError(f"cannot read tar {store.url(rel)}: {exc}") from exc


def plan_tars(
    store: ArtifactStore,
    spec: int | list[str] | None,
    val_labels_file: str,
    window: int = 4 << 20,
) -> IngestPlan:
    _require(store, TRAIN_TAR, "tars", "archive", is_dir=False)
    _require(store, VAL_TAR, "tars", "archive", is_dir=False)
    _require(store, val_labels_file, "tars", "val labels file", is_dir=False)
    inner = {}
    for entry in _list_tar(store, TRAIN_TAR, window):
        base = posixpath.basename(entry.name)
        if base.endswith(".tar"):
            inner[base[: -len(".tar")]] = entry
        else:
            log.warning("ignoring %s in %s: not a class tar", entry.name, TRAIN_TAR)
    if not inner:
        raise IngestError(f"tars layout: no class tars inside {store.url(TRAIN_TAR)}")
    available = sorted(inner)
    classes = select_classes(available, spec)
    class_tars = []
    for label, synset in enumerate(classes):
        entry = inner[synset]
        class_tars.append(
            ClassTar(
                store.root, TRAIN_TAR, entry.offset, entry.size, f"{synset}.tar/", synset, label
            )
        )

    val_entries = sorted(
        _list_tar(store, VAL_TAR, window), key=lambda e: posixpath.basename(e.name)
    )
    synsets = [s.strip() for s in store.read_text(val_labels_file).splitlines() if s.strip()]
    if len(synsets) < len(val_entries):
        missing = val_entries[len(synsets)].name
        raise IngestError(
            f"val image {missing} has no label: {val_labels_file} has {len(synsets)} lines "
            f"for {len(val_entries)} val images"
        )
    if len(synsets) > len(val_entries):
        raise IngestError(
            f"{val_labels_file} has {len(synsets)} labels but {VAL_TAR} "
            f"holds {len(val_entries)} images"
        )
    labels_of = {s: i for i, s in enumerate(classes)}
    known = set(available)
    members = []
    for entry, synset in zip(val_entries, synsets, strict=True):
        if synset not in known:
            raise IngestError(
                f"val image {entry.name} has no label: {synset} is not a training synset"
            )
        if synset in labels_of:
            members.append(LabelledEntry(entry, synset, labels_of[synset]))
    return IngestPlan(
        store.root,
        "tars",
        classes,
        {
            "train": SplitPlan(class_tars=class_tars),
            "val": SplitPlan(tar_members=members, tar_rel=VAL_TAR),
        },
    )


def plan_cifar(store: ArtifactStore, layout: str, spec: int | list[str] | None,
               label_kind: str) -> IngestPlan:
    """One unit per pickled batch; the driver reads every batch first (CifarSource.check),
    so a damaged file stops the ingest before anything is written."""
    source = find_release(store, layout)
    if source is None:
        release = CIFAR10 if layout == "cifar10" else CIFAR100
        raise IngestError(f"{layout} layout: neither {store.url(release.folder)}/ nor "
                          f"{store.url(release.archive)} found")
    if label_kind == "coarse" and layout != "cifar100":
        raise IngestError("coarse labels exist only in the cifar100 layout")
    try:
        names = source.check(label_kind)
    except CifarError as exc:
        raise IngestError(str(exc)) from None
    classes = select_classes(names, spec)
    selected = tuple(names.index(c) for c in classes)

    def batch(name: str) -> CifarBatch:
        return CifarBatch(store.root, layout, source.folder, source.archive, name, label_kind,
                          selected, tuple(classes))

    return IngestPlan(store.root, layout, classes, {
        "train": SplitPlan(cifar_batches=[batch(n) for n in source.release.train]),
        "val": SplitPlan(cifar_batches=[batch(source.release.test)]),
    })


def plan_ingest(
    source: str,
    layout: str = "auto",
    classes: int | list[str] | None = None,
    val_labels_file: str = "validation_labels.txt",
    tar_window: int = 4 << 20,
    cifar100_labels: str = "fine",
) -> IngestPlan:
    """Check the source and plan the ingest; raises IngestError naming any problem.

    A CIFAR archive may be given as the source itself (its directory is then the source).
    """
    source = normalize_url(source).rstrip("/")
    if posixpath.basename(source) in (CIFAR10.archive, CIFAR100.archive):
        source = posixpath.dirname(source)
    store = open_source(source)
    if layout == "auto":
        layout = detect_layout(store)
    if layout == "folders":
        plan = plan_folders(store, classes)
    elif layout == "kaggle":
        plan = plan_kaggle(store, classes)
    elif layout == "tars":
        plan = plan_tars(store, classes, val_labels_file, tar_window)
    elif layout in ("cifar10", "cifar100"):
        plan = plan_cifar(store, layout, classes, cifar100_labels)
    else:
        raise IngestError(f"unknown layout {layout!r} (expected auto, folders, kaggle, tars, "
                          "cifar10 or cifar100)")
    for split in SPLITS:
        if plan.splits[split].is_empty():
            raise IngestError(
                f"{layout} layout: no {split} images for the selected classes in {source}"
            )
    return plan
