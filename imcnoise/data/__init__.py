"""Real data sets as in-memory uint8 tensors (Fashion-MNIST, CIFAR-10/100, image folders).

Finds, downloads (where a network exists) and checksum-verifies the files, decodes them once into
a cache, and gives clear errors for missing or damaged data. Imports nothing of imcnoise.
"""

from .dataset import ImageDataset
from .errors import DataError
from .registry import DATASETS, get_info, load_dataset

__all__ = ["ImageDataset", "DataError", "DATASETS", "get_info", "load_dataset"]
