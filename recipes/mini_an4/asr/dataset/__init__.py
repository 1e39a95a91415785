"""mini AN4 for ASR: the builder that prepares the data, the dataset that reads it, features.

Example:
    >>> from espnet3.components.data.dataset_module import load_dataset_module
    >>> package = load_dataset_module("mini_an4/asr")
    >>> sorted(name for name in ("Dataset", "DatasetBuilder") if hasattr(package, name))
    ['Dataset', 'DatasetBuilder']
"""

from .builder import DatasetBuilder
from .dataset import Dataset
from .features import FbankProvider, FbankRunner, compute_features, load_cuts

__all__ = [
    "Dataset",
    "DatasetBuilder",
    "FbankProvider",
    "FbankRunner",
    "compute_features",
    "load_cuts",
]
