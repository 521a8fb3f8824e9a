"""Where an ingest writes, and how a finished output becomes visible.

On file systems with a real directory rename (local, HDFS) everything is written to a hidden
sibling directory and renamed into place at the end, so a failed run leaves nothing at the
target (and ``--overwrite`` keeps the old output until the new one is complete). Object
stores cannot rename a directory cheaply, so there the output is written in place; either
way the completion marker is written last, and only a directory with the marker counts as
an ingest output. A run that was killed leaves its hidden staging directory behind; the next
ingest into the same output removes it (two ingests into one output at the same time are
not supported anyway: both would publish to the same place).
"""

from __future__ import annotations

import logging
import posixpath
import re
import uuid
from types import TracebackType

import pyarrow.fs as pafs

from pipeline.data.layouts import IngestError
from pipeline.store import OBJECT_STORE_SCHEMES, ArtifactStore, normalize_url

log = logging.getLogger(__name__)


def check_output(url: str, overwrite: bool) -> None:
    """Raise IngestError if ``url`` already holds something and ``overwrite`` is off."""
    store = ArtifactStore(url)
    if overwrite or not store.exists():
        return
    if store.is_dir() and not store.listdir():
        return
    state = "an ingest output" if store.is_complete() else "not a complete ingest output"
    raise IngestError(
        f"output {store.root} already exists ({state}); pass --overwrite to replace it"
    )


def stale_staging(url: str) -> list[str]:
    """Names of staging directories (``.tmp-<12 hex>-<name>``) left beside ``url``."""
    parent_url, name = posixpath.split(normalize_url(url).rstrip("/"))
    parent = ArtifactStore(parent_url)
    if not parent.is_dir():
        return []
    pattern = re.compile(rf"\.tmp-[0-9a-f]{{12}}-{re.escape(name)}")
    infos = parent.fs.get_file_info(pafs.FileSelector(parent.path(), recursive=False))
    names = [posixpath.basename(i.path.rstrip("/")) for i in infos
             if i.type == pafs.FileType.Directory]
    return sorted(n for n in names if pattern.fullmatch(n))


class StagedOutput:
    """Context manager yielding the store to write into; publishes it on a clean exit."""

    def __init__(self, url: str, overwrite: bool) -> None:
        self.url = normalize_url(url)
        self.overwrite = overwrite
        self.target = ArtifactStore(self.url)
        self.renames = self.target.scheme not in OBJECT_STORE_SCHEMES
        parent, name = posixpath.split(self.url.rstrip("/"))
        self.staging_url = (
            f"{parent}/.tmp-{uuid.uuid4().hex[:12]}-{name}" if self.renames else self.url
        )
        self.staging = ArtifactStore(self.staging_url)

    def __enter__(self) -> ArtifactStore:
        check_output(self.url, self.overwrite)
        if not self.renames:
            self.target.delete()
        else:
            parent = ArtifactStore(posixpath.dirname(self.url))
            for name in stale_staging(self.url):
                log.warning("removing %s, left behind by an ingest that did not finish",
                            parent.url(name))
                parent.delete(name)
        self.staging.makedirs()
        return self.staging

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            if self.renames:
                self.staging.delete()
            return
        if not self.renames:
            return
        if self.target.exists():
            self.target.delete()
        parent = ArtifactStore(posixpath.dirname(self.url))
        parent.move(posixpath.basename(self.staging_url), posixpath.basename(self.url))
        log.info("published %s", self.url)
