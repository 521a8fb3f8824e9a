"""Stand-in for ``benchmarks/reader_throughput.py``, which still runs as a script from this
folder and imports ``common``: the real module is ``benchmarks/harness/common.py``. Delete
this file when reader_throughput moves to ``benchmarks/reader_throughput/bench.py``."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from benchmarks.harness.common import *  # noqa: E402, F403
