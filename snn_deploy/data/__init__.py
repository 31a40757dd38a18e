"""Data sets for training and evaluation: built-in digits (images and simulated events) and on-disk published
formats (CIFAR-10/100 python batches, ImageFolder trees, DVS128 Gesture, CIFAR10-DVS).

``names()`` lists them, ``info(name)`` describes one, ``open_splits(name, size=, T=, data_dir=)`` returns its
train and test :class:`~snn_deploy.data.base.Samples`. Nothing is downloaded, ever.
"""

import importlib

from snn_deploy.data.registry import DatasetInfo, info, names

__all__ = ["DatasetInfo", "LazySamples", "Samples", "Splits", "Subset", "TensorSamples",
           "first_per_class", "info", "names", "open_splits"]
_LAZY = {"LazySamples": "base", "Samples": "base", "Splits": "base", "Subset": "base", "TensorSamples": "base",
         "first_per_class": "base", "open_splits": "catalog"}
"""Names whose modules import torch, loaded on first use: the data-set table (``names``, ``info``) stays light."""


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"snn_deploy.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'snn_deploy.data' has no attribute {name!r}")
