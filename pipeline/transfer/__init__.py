"""Ticket transfer (Morcos et al. 2019): a finished run's tickets trained on another data set.

:mod:`~pipeline.transfer.settings` (the ``transfer.*`` section and how a transfer run's
settings derive from the source's), :mod:`~pipeline.transfer.weights` (a new classifier
for the target's classes), :mod:`~pipeline.transfer.shots` (few-shot training subsets),
:mod:`~pipeline.transfer.source` (the source run's artifacts moved into the transfer run),
:mod:`~pipeline.transfer.job` (the job) and :mod:`~pipeline.transfer.summary` (its
report section).
"""
