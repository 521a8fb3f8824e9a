"""Ticket ensembles of a finished run: prediction ensembles and merged tickets.

:mod:`~pipeline.ensembles.settings` (``ensemble.*``), :mod:`~pipeline.ensembles.members`
(which trained cells form each ensemble), :mod:`~pipeline.ensembles.predictions` (the
softmax average of K members on val, spread over Spark tasks),
:mod:`~pipeline.ensembles.merge` (union and intersection masks, retrained as grid cells),
:mod:`~pipeline.ensembles.job` and :mod:`~pipeline.ensembles.summary` (its report).
"""
