"""Built and compiled Keras models kept in a (reused) Python worker between tasks.

Building MobileNetV2 and tracing its train step costs seconds, more than a small round or
cell trains. Spark reuses Python workers, so each kind of use (Elephas rounds, cells,
evaluation) keeps its last few models, keyed by everything that defines them; every use
then overwrites all weights and optimizer variables. A few (``KEPT``), not one: a worker
that alternates between two models (a dense round and a cell, two jobs of one session)
would otherwise rebuild on every switch; not more, since each holds its weights and graphs.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

KEPT = 3

T = TypeVar("T")


class ModelCache(Generic[T]):
    """The ``kept`` most recently used entries by key (least recently used go first)."""

    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._entries: OrderedDict[Hashable, T] = OrderedDict()
        self.builds = 0  # entries built so far (a cache miss each)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry for ``key``, built by ``build()`` if it is not kept."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        while len(self._entries) >= self.kept:
            self._entries.popitem(last=False)
        value = self._entries[key] = build()
        self.builds += 1
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def config_key(serialized: object) -> str:
    """A key for a Keras object's serialized config (optimizer, loss): its canonical JSON."""
    return json.dumps(serialized, sort_keys=True, default=repr)
