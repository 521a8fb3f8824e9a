"""Lottery-ticket engine (no Spark): masked layers, pruning, rewinding, controls, storage.

Typical IMP round on a masked model ``m = to_masked(create_model(...))``::

    train(m); masks = imp_masks(m, policy, level)      # prune the trained weights
    rewind(m, checkpoint_epoch_k, masks)               # survivors back to epoch k
    train(m)                                           # masks hold; zeros stay zeros
    save_ticket(store, make_ticket(m, policy, masks, checkpoint_epoch_k, settings), "L1")
"""

from pipeline.tickets.controls import apply_control, list_controls, register_control
from pipeline.tickets.conversion import (
    full_weights,
    kernel_positions,
    masked_layers,
    plain_weights,
    to_masked,
    to_plain,
)
from pipeline.tickets.masked_layers import (
    MaskedConv2D,
    MaskedDense,
    MaskedDepthwiseConv2D,
    custom_objects,
)
from pipeline.tickets.masked_spec import MaskedSpec
from pipeline.tickets.masks import Masks, apply_masks, get_masks, ones_masks, set_masks
from pipeline.tickets.policy import KernelInfo, PruningPolicy, describe_kernels
from pipeline.tickets.pruning import imp_masks, masks_at_level, one_shot_masks
from pipeline.tickets.rewind import rewind
from pipeline.tickets.sparsity import SparsityReport, sparsity_report
from pipeline.tickets.storage import (
    Ticket,
    apply_ticket,
    load_ticket,
    make_ticket,
    masks_from_bytes,
    masks_to_bytes,
    save_ticket,
    ticket_exists,
)

__all__ = [
    "KernelInfo",
    "MaskedConv2D",
    "MaskedDense",
    "MaskedDepthwiseConv2D",
    "MaskedSpec",
    "Masks",
    "PruningPolicy",
    "SparsityReport",
    "Ticket",
    "apply_control",
    "apply_masks",
    "apply_ticket",
    "custom_objects",
    "describe_kernels",
    "full_weights",
    "get_masks",
    "imp_masks",
    "kernel_positions",
    "list_controls",
    "load_ticket",
    "make_ticket",
    "masked_layers",
    "masks_at_level",
    "masks_from_bytes",
    "masks_to_bytes",
    "one_shot_masks",
    "ones_masks",
    "plain_weights",
    "register_control",
    "rewind",
    "save_ticket",
    "set_masks",
    "sparsity_report",
    "ticket_exists",
    "to_masked",
    "to_plain",
]
