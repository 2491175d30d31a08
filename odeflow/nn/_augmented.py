"""Augmented neural ODEs (Dupont, Doucet & Teh 2019) and the discrete layer that
changes dimension between continuous blocks.

A plain ODE flow is a homeomorphism of its state space: trajectories cannot cross,
so some maps (x -> -x in one dimension) are out of reach. Padding the state with
zeros gives the flow room to go around; the extra coordinates are kept in the
output and a following layer reads them.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_positive_int
from ..solvers import SolverStats
from ._block import ODEBlock


class AugmentedODEBlock(eqx.Module):
    """`block` run on the state padded with `augment` zeros along its last axis;
    returns the whole augmented state at `t1` (last axis `d + augment`). The
    block's vector field works on the augmented state."""

    block: ODEBlock
    augment: int = eqx.field(static=True)

    def __check_init__(self):
        check_positive_int(self.augment, "augment")

    def __call__(self, h: Array, args: Any = None) -> Array:
        return self.solve(h, args)[0]

    def solve(self, h: Array, args: Any = None) -> tuple[Array, SolverStats]:
        if not hasattr(h, "shape") or jnp.ndim(h) < 1:
            raise TypeError(
                "AugmentedODEBlock pads an array's last axis; got "
                f"{type(h).__name__} with shape {jnp.shape(h)}: pass an array of shape (..., d)"
            )
        h = jnp.asarray(h)
        zeros = jnp.zeros(h.shape[:-1] + (self.augment,), h.dtype)
        return self.block.solve(jnp.concatenate([h, zeros], axis=-1), args)


class ChangeDimension(eqx.Module):
    """An affine map on the last axis, `(..., in_dim) -> (..., out_dim)`: the discrete
    layer between continuous blocks of different widths (or from an augmented
    state to the next block)."""

    linear: eqx.nn.Linear

    def __init__(self, in_dim: int, out_dim: int, *, key: PRNGKeyArray, dtype=None):
        check_positive_int(in_dim, "in_dim")
        check_positive_int(out_dim, "out_dim")
        self.linear = eqx.nn.Linear(in_dim, out_dim, key=key, dtype=dtype)

    def __call__(self, h: Array) -> Array:
        if h.shape[-1] != self.linear.in_features:
            raise ValueError(
                f"ChangeDimension expects a last axis of {self.linear.in_features}, got shape "
                f"{h.shape}"
            )
        flat = h.reshape(-1, h.shape[-1])
        return jax.vmap(self.linear)(flat).reshape(h.shape[:-1] + (self.linear.out_features,))
