"""Check that every ticket of a run derives from one dense trajectory of its replicate.

    python jobs/verify_run.py RUN_DIR

Recomputes the SHA-256 of every dense checkpoint, mask file and finished cell's weights of
a run directory of jobs/prune_imagenet.py (local path or URL) and follows the links their
records keep (pipeline/experiment/provenance.py). Prints one line per inconsistency and
exits 1 if there is any, else prints "provenance verified" and exits 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse  # noqa: E402
import posixpath  # noqa: E402

PROG = "verify_run"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("run", metavar="RUN_DIR", help="run directory (local path or URL)")
    args = parser.parse_args(argv)

    from pipeline.config import ConfigError
    from pipeline.experiment.provenance import verify_run
    from pipeline.experiment.run_dir import RunDirectory, read_settings
    from pipeline.experiment.run_layout import SETTINGS
    from pipeline.logs import setup_logging
    from pipeline.store import ArtifactStore, StoreError, normalize_url

    setup_logging()
    url = normalize_url(args.run)
    try:
        store = ArtifactStore(url)
        if not store.exists(SETTINGS):
            raise StoreError(f"{url} is not a run directory of prune_imagenet (no {SETTINGS})")
        settings = read_settings(store)
        settings.run.output = posixpath.dirname(url)  # the run may have moved since
        run = RunDirectory(settings)
        if run.url != url:
            raise StoreError(f"{url}: its settings.yaml belongs to a run directory named "
                             f"{posixpath.basename(run.url)}; give that name back to check it")
        problems = verify_run(run)
    except (ConfigError, StoreError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if problems:
        print(f"{PROG}: {len(problems)} inconsistencies in {url}", file=sys.stderr)
        return 1
    print(f"provenance verified: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
