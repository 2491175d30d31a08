"""Data for the neural-ODE models, generated or read locally (nothing is
downloaded): the latent-ODE `spirals` with irregular `subsample` masks,
scikit-learn's `digits`, `mnist1d`, and `mnist` from local IDX files."""

from ._idx import MNIST_FILES, mnist, read_idx, write_idx
from ._images import digits, mnist1d, train_test_split
from ._spirals import Spirals, spirals, subsample

__all__ = [
    "MNIST_FILES",
    "Spirals",
    "digits",
    "mnist",
    "mnist1d",
    "read_idx",
    "spirals",
    "subsample",
    "train_test_split",
    "write_idx",
]
