"""The registered problems: Owens & Filkin's sigmoid/least-squares class and small
classifiers on generated or package-shipped data (nothing is downloaded)."""

from __future__ import annotations

import functools
import itertools

import jax.numpy as jnp
import numpy as np

from .. import data
from ._mlp import (
    apply_mlp,
    argmax_accuracy,
    binary_cross_entropy,
    cross_entropy,
    init_mlp,
    sign_accuracy,
    sum_of_squares,
    threshold_accuracy,
)
from ._task import Task


def _sigmoid_task(name, description, x, y, sizes, dtype):
    data = {"x": jnp.asarray(x, dtype), "y": jnp.asarray(y, dtype)}
    return Task(
        name=name,
        description=description,
        data=data,
        init_fn=lambda key: init_mlp(key, sizes, dtype, scale="uniform"),
        apply_fn=functools.partial(apply_mlp, hidden="sigmoid", output="sigmoid"),
        loss_fn=sum_of_squares,
        accuracy_fn=threshold_accuracy,
    )


def xor(dtype=jnp.float64) -> Task:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([[0], [1], [1], [0]])
    return _sigmoid_task("xor", "XOR, 2-2-1 sigmoid net, sum of squares", x, y, (2, 2, 1), dtype)


def encoder(dtype=jnp.float64) -> Task:
    eye = np.eye(8)
    return _sigmoid_task(
        "encoder", "8-3-8 encoder, sigmoid, sum of squares", eye, eye, (8, 3, 8), dtype
    )


def parity4(dtype=jnp.float64) -> Task:
    x = np.array(list(itertools.product([0, 1], repeat=4)))
    y = (x.sum(axis=1) % 2)[:, None]
    return _sigmoid_task(
        "parity4", "4-bit parity, 4-4-1 sigmoid net, sum of squares", x, y, (4, 4, 1), dtype
    )


def _classifier(name, description, split, sizes, dtype, hidden="tanh"):
    x, y, x_test, y_test = split
    binary = sizes[-1] == 1
    label_dtype = dtype if binary else jnp.int32  # binary labels enter the loss as floats
    data = {
        "x": jnp.asarray(x, dtype),
        "y": jnp.asarray(y, label_dtype),
        "x_test": jnp.asarray(x_test, dtype),
        "y_test": jnp.asarray(y_test, label_dtype),
    }
    return Task(
        name=name,
        description=description,
        data=data,
        init_fn=lambda key: init_mlp(key, sizes, dtype),
        apply_fn=functools.partial(apply_mlp, hidden=hidden, output=None),
        loss_fn=binary_cross_entropy if binary else cross_entropy,
        accuracy_fn=sign_accuracy if binary else argmax_accuracy,
    )


def _split(d):
    """Flatten the data module's arrays (channel and spatial axes) for an MLP."""
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)
    return flat(d["x"]), d["y"], flat(d["x_test"]), d["y_test"]


def digits(dtype=jnp.float64, hidden: int = 32) -> Task:
    """scikit-learn's 8x8 digits (shipped with the package), pixels scaled to [0, 1],
    80/20 split, MLP 64-`hidden`-10 with tanh, cross-entropy."""
    split = _split(data.digits())
    sizes = (64, hidden, 10)
    n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return _classifier("digits", f"sklearn digits, MLP 64-{hidden}-10 ({n} params)", split, sizes, dtype)


def moons(dtype=jnp.float64, n_samples: int = 200) -> Task:
    """Two interleaved half circles (scikit-learn generator, noise 0.2, fixed seed),
    MLP 2-16-16-1 with tanh, logistic loss."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_samples, noise=0.2, random_state=0)
    d = data.train_test_split(x, y.astype(np.float64))
    split = d["x"], d["y"], d["x_test"], d["y_test"]
    return _classifier("moons", "2-D moons, MLP 2-16-16-1", split, (2, 16, 16, 1), dtype)


def mnist1d(dtype=jnp.float64, num_samples: int = 2000, hidden: int = 64) -> Task:
    """MNIST-1D (Greydanus 2020) generated locally by the `mnist1d` package's
    generator (no download), MLP 40-`hidden`-10 with tanh, cross-entropy."""
    split = _split(data.mnist1d(num_samples))
    sizes = (40, hidden, 10)
    return _classifier("mnist1d", f"MNIST-1D, MLP 40-{hidden}-10", split, sizes, dtype)
