"""Helpers shared by odeflow's Runge-Kutta solvers."""

from __future__ import annotations

import numpy as np


def to_tuple(x):
    """Nested tuples of floats from an array (hashable, so a solver holding its
    coefficients as static fields can be a `jit` cache key); `None` stays `None`."""
    if x is None:
        return None
    return tuple(map(to_tuple, x)) if np.ndim(x) > 0 else float(x)
