"""Data for the neural-ODE models, generated or read locally (nothing is
downloaded): the latent-ODE `spirals` with irregular `subsample` masks (or each
series' own times, `observed_points`),
scikit-learn's `digits`, `mnist1d`, `mnist` from local IDX files, and 2-D `toy_density` samples."""

from ._idx import MNIST_FILES, mnist, read_idx, write_idx
from ._images import digits, mnist1d, train_test_split
from ._spirals import Spirals, observed_points, spirals, subsample
from ._toy2d import TOY_DENSITIES, toy_density

__all__ = [
    "MNIST_FILES",
    "Spirals",
    "TOY_DENSITIES",
    "digits",
    "mnist",
    "mnist1d",
    "observed_points",
    "read_idx",
    "spirals",
    "subsample",
    "toy_density",
    "train_test_split",
    "write_idx",
]
