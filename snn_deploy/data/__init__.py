"""Data sets for training and evaluation: built-in digits (images and simulated events) and on-disk published
formats (CIFAR-10/100 python batches, ImageFolder trees, DVS128 Gesture, CIFAR10-DVS).

``names()`` lists them, ``info(name)`` describes one, ``open_splits(name, size=, T=, data_dir=)`` returns its
train and test :class:`~snn_deploy.data.base.Samples`. Nothing is downloaded, ever.
"""

from snn_deploy.data.base import LazySamples, Samples, Splits, Subset, TensorSamples, first_per_class
from snn_deploy.data.catalog import open_splits
from snn_deploy.data.registry import DatasetInfo, info, names

__all__ = ["DatasetInfo", "LazySamples", "Samples", "Splits", "Subset", "TensorSamples",
           "first_per_class", "info", "names", "open_splits"]
