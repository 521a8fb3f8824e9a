"""Training: Elephas data-parallel dense training, the grid's fan-out, evaluation, devices."""
