"""Measured ratios of the pipeline, each against a baseline run in the same process.

One folder per concern; every figure's definition is in its module's docstring::

    harness/            run_all.py (``make bench``), common.py (result dicts, --json/--quick),
                        cpu_usage.py (CPU accounting, free-core probe)
    datasets/           shared inputs: imagenet_like.py (JPEG trees, ingested datasets),
                        ingest_child.py (an ingest in its own process), prepared_run.py
                        (a run directory with its dense stage and level-1 masks)
    ingest_throughput/  ingest_vs_decode, ingest_scaling
    reader_throughput/  reader_vs_decode
    masking_overhead/   masking_overhead, mask_cost_vs_naive
    ticket_size/        ticket_size
    distributed_training/  distributed_vs_single, memory_growth (child.py: one training run)
    grid_speedup/       grid_speedup_vs_ideal
    cell_vs_keras/      cell_vs_keras

Run one with ``python -m benchmarks.<folder>.bench [--quick]`` from the repository root, or
all of them with ``make bench`` (``python -m benchmarks.harness.run_all``). Generated inputs
live in ``benchmarks/scratch/`` (git-ignored); ``make bench`` writes ``results.json`` and
``results.md`` here.
"""
