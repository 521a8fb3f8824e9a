"""Seeds and determinism: every random choice of a run derives from its seed.

* :func:`derive_seed` turns a tuple such as ``(run seed, "epoch", 3, "round", 5)`` into one
  64-bit-safe integer through NumPy's ``SeedSequence`` hashing, so distinct tuples do not
  collide the way ``seed * 1000 + epoch`` arithmetic does.
* :func:`seeded` fixes Keras' default initializer seeds around model construction.
* :func:`make_deterministic` switches on TensorFlow op determinism and seeds Keras' global
  generators for the work that follows (a cell, a round) in this process.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_op_determinism = False


def derive_seed(*parts: int | str) -> int:
    """A seed in ``[0, 2**31)`` for ``parts``; equal parts give equal seeds, others differ."""
    words = []
    for part in parts:
        if isinstance(part, str):
            words.append(zlib.crc32(part.encode()))
        else:
            words.append(int(part) & 0xFFFFFFFF)
            words.append((int(part) >> 32) & 0xFFFFFFFF)
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint32)[0]
    return int(state) & 0x7FFFFFFF


def replicate_seed(run_seed: int, replicate: int) -> int:
    """The seed of replicate ``replicate`` (0-based) of a run: its own initialization, data
    order and control draws, all derived from it."""
    return derive_seed(run_seed, "replicate", replicate)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Keras' default initializer seeds, then restore Python's random state.

    Keras 3 initializers created without a seed draw one from Python's ``random`` module
    when the layer is constructed; seeding it around model construction therefore fixes
    every initial weight without touching NumPy's or TensorFlow's global state.
    """
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def use_op_determinism(enabled: bool = True) -> None:
    """With ``enabled``, switch on TensorFlow op determinism for this process (it stays on)."""
    global _op_determinism
    if enabled and not _op_determinism:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        _op_determinism = True


def make_deterministic(seed: int, enabled: bool = True) -> None:
    """Seed Keras' global generators (dropout and the like) with ``seed``; with ``enabled``
    also switch on TensorFlow op determinism for this process (it stays on).

    Seeding makes TensorFlow retrace every compiled function (about 2 s for a MobileNetV2
    train step on one core), so call it once per model, not per round.
    """
    import keras

    use_op_determinism(enabled)
    keras.utils.set_random_seed(seed)  # also seeds Python's, NumPy's and TensorFlow's
