"""Helpers shared by odeflow's Runge-Kutta solvers."""

from __future__ import annotations

import numpy as np


def to_tuple(x):
    """Nested tuples of floats from an array (hashable, so a solver holding its
    coefficients as static fields can be a `jit` cache key); `None` stays `None`."""
    if x is None:
        return None
    return tuple(map(to_tuple, x)) if np.ndim(x) > 0 else float(x)


def lower_rows(rows, size: int) -> np.ndarray:
    """Square matrix whose row `i` (from 1) starts with `rows[i - 1]`: diffrax stores
    Runge-Kutta coefficients as ragged lower-triangular rows."""
    a = np.zeros((size, size))
    for i, row in enumerate(rows, start=1):
        a[i, : len(row)] = row
    return a
