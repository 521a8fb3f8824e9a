"""Bytes of a saved ticket at 10 % weights remaining / bytes of the dense weights file.

Model: MobileNetV2 (alpha 1.0, 224x224, 1000 classes, ``weights=None``: 3.5 M parameters).
Every weight (BatchNorm statistics included) is first perturbed with random noise so that
nothing compresses better than trained weights would (a fresh init has constant BatchNorm
parameters). Then one-shot layerwise magnitude pruning to 90 % sparsity of the prunable
kernels (layerwise: every mask at 10 % density, the output layer's too, the least
compressible case). The ticket
(bit-packed masks, surviving rewind values, dense biases/BatchNorm incl. moving
statistics, sparsity table and JSON settings) is saved through ``ArtifactStore``; the
baseline is the dense plain model saved with ``model.save_weights`` (``.weights.h5``).
The npz of the dense weight list is reported in ``inputs`` too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from pipeline.models import create_model  # noqa: E402
from pipeline.store import ArtifactStore  # noqa: E402
from pipeline.tickets import (  # noqa: E402
    PruningPolicy,
    make_ticket,
    one_shot_masks,
    save_ticket,
    to_masked,
)
from pipeline.weights_npz import weights_to_bytes  # noqa: E402

INPUTS = {"model": "mobilenet_v2", "alpha": 1.0, "image_size": 224, "classes": 1000,
          "sparsity": 0.9, "policy": "layerwise, one-shot", "weights": "init + noise"}


def run(repetitions: int = 1) -> list[dict]:
    """Save one ticket and the dense weights; sizes are deterministic, so one repetition."""
    plain = create_model("mobilenet_v2", image_size=INPUTS["image_size"],
                         classes=INPUTS["classes"], alpha=INPUTS["alpha"], seed=0)
    rng = np.random.default_rng(0)
    plain.set_weights([
        (w * rng.uniform(0.5, 1.5, w.shape) + rng.normal(0, 0.01, w.shape)).astype(w.dtype)
        for w in plain.get_weights()
    ])
    model = to_masked(plain)
    # every kernel at 10 % density, the output layer too (the default would prune it at
    # half the rate, which measures the policy, not the storage format)
    policy = PruningPolicy(strategy="layerwise", classifier_fraction=0.2)
    masks = one_shot_masks(model, policy, INPUTS["sparsity"])
    ticket = make_ticket(model, policy, masks, settings={"benchmark": "ticket_size"})
    with tempfile.TemporaryDirectory() as tmp:
        store = ArtifactStore(tmp)
        save_ticket(store, ticket, "ticket")
        files = {name: store.size("ticket", name) for name in store.listdir("ticket")}
        dense_path = Path(tmp) / "dense.weights.h5"
        plain.save_weights(dense_path)
        dense_bytes = dense_path.stat().st_size
    ticket_bytes = sum(files.values())
    return [{
        "name": "ticket_size",
        "ratio": ticket_bytes / dense_bytes,
        "target": 0.2,
        "better": "lower",
        "value": ticket_bytes,
        "unit": "bytes",
        "baseline": dense_bytes,
        "repetitions": repetitions,
        "spread": 0.0,
        "inputs": {
            **INPUTS,
            "parameters": plain.count_params(),
            "weights_remaining_prunable": ticket.summary["weights_remaining_prunable"],
            "weights_remaining_overall": ticket.summary["weights_remaining_overall"],
            "ticket_files": files,
            "baseline_file": "model.save_weights (.weights.h5) of the dense plain model",
            "dense_npz_bytes": len(weights_to_bytes(plain.get_weights())),
        },
    }]


if __name__ == "__main__":
    from benchmarks.harness.common import bench_main

    bench_main(run)
