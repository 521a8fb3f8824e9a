"""One precision rule for every model a task trains: the global Keras dtype policy.

``train.mixed_precision`` on a GPU sets ``mixed_float16`` globally in the task
(:func:`pipeline.train.devices.configure_task_devices`). Grid cells build their model in
the task, so every layer takes the policy. Elephas workers instead rebuild the driver's
model from its JSON, where each layer names the ``float32`` it was built with; rebuilt
as is, only some layers would follow the global policy. :func:`json_under_global_policy`
rewrites those names, so the dense rounds compute in the same precision as the cells.
"""

from __future__ import annotations

import json
from typing import Any

import keras

POLICY_CLASS = "DTypePolicy"


def json_under_global_policy(model_json: str) -> str:
    """``model_json`` with every layer's dtype policy set to the global one (unchanged
    under the default ``float32``)."""
    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        return model_json
    data = json.loads(model_json)
    _set_policies(data, policy)
    return json.dumps(data)


def _set_policies(node: Any, policy: str) -> None:
    if isinstance(node, dict):
        dtype = node.get("dtype")
        if isinstance(dtype, dict) and dtype.get("class_name") == POLICY_CLASS:
            dtype.setdefault("config", {})["name"] = policy
        for value in node.values():
            _set_policies(value, policy)
    elif isinstance(node, list):
        for value in node:
            _set_policies(value, policy)
