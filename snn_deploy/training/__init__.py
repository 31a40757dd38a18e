"""Training, evaluation and self-supervised pre-training of zoo models on the data sets of :mod:`snn_deploy.data`.

Deterministic on CPU (seeded generators, deterministic kernels, a fixed thread count), resumable from per-epoch
checkpoints, and the same code runs in one process or in several under ``torchrun`` (DistributedDataParallel).
"""

DEFAULT_THREADS = 1
"""Intra-op threads per process by default (see :mod:`snn_deploy.training.runtime`); here so the CLI can show it
without importing torch."""
