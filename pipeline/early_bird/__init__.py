"""Early-bird tickets (You et al. 2019): masks drawn during dense training, their time
series, and detectors of the point where the mask stops changing.

:mod:`~pipeline.early_bird.series` (distances, nuclear norms, changed fractions),
:mod:`~pipeline.early_bird.detectors` (You et al.'s distance rule, its threshold relative to
the pruning fraction, and a Mann–Kendall plus von Neumann ratio stationarity test calibrated
on random walks), :mod:`~pipeline.early_bird.tracker` (the dense
stage's driver-side tracking and its ``dense/early_bird.json``) and
:mod:`~pipeline.early_bird.figures`.
"""
