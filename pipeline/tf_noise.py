"""Filter the lines TensorFlow's import prints that no TensorFlow setting turns off.

Importing TensorFlow 2.19 writes, straight to file descriptor 2 and before its logging is
set up, duplicate-registration notices for its CUDA plugins (cuFFT, cuDNN, cuBLAS, the
computation placer: a packaging quirk, harmless) whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
Every Spark Python worker that imports it prints them again, and they bury real errors in
executor logs. :func:`install` (called by ``pipeline/__init__.py``) wraps the first import
of ``tensorflow`` in the process: descriptor 2 goes to a temporary file meanwhile, and every
line but those notices is written back afterwards, in order.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

NOISE = re.compile(
    r"Unable to register cu(DNN|BLAS|FFT) factory: Attempting to register factory for plugin"
    r"|computation placer already registered"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)


def kept(lines: Iterable[bytes]) -> list[bytes]:
    """The lines that are not TensorFlow's unsilenceable registration notices."""
    return [line for line in lines if not NOISE.search(line.decode("utf-8", "replace"))]


def filtered_stderr(action: Callable[[], Any]) -> Any:
    """Run ``action`` with descriptor 2 captured, then write back all but the notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            return action()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in kept(capture.read().splitlines(keepends=True)):
                os.write(2, line)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):  # noqa: ANN001, ANN201
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:  # noqa: ANN001
        module.__loader__ = module.__spec__.loader = self._loader
        filtered_stderr(lambda: self._loader.exec_module(module))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201
        if name != "tensorflow":
            return None
        uninstall()
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Filter the first ``import tensorflow`` of this process (a no-op once imported, or
    with ``LOTTERY_TF_NOISE=keep``)."""
    if "tensorflow" in sys.modules or os.environ.get("LOTTERY_TF_NOISE") == "keep":
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())


def uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]
