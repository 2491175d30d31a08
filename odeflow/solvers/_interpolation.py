"""Dense output as a polynomial in the fraction of the step: y(t0 + θ(t1 - t0)) =
y0 + Σ_j θ^(j+1) coeffs[j]. Each odeflow solver computes the coefficients from its
stages (`coefficients`), so the interpolant has the order its method allows."""

from __future__ import annotations

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PyTree


class PolynomialInterpolation(dfx.AbstractLocalInterpolation):
    """`y0 + Σ_j θ^(j+1) coeffs[j]` with θ the fraction of the step from `t0` to
    `t1`; each leaf of `coeffs` has a leading axis over the powers 1, 2, ..."""

    t0: Array
    t1: Array
    y0: PyTree
    coeffs: PyTree

    def __init__(self, *, t0, t1, y0, coeffs):
        self.t0, self.t1, self.y0, self.coeffs = t0, t1, y0, coeffs

    def evaluate(self, t0, t1=None, left: bool = True) -> PyTree:
        del left
        if t1 is not None:
            return jax.tree.map(lambda a, b: b - a, self.evaluate(t0), self.evaluate(t1))
        theta = (t0 - self.t0) / jnp.where(self.t1 == self.t0, 1.0, self.t1 - self.t0)

        def at(y0, coeffs):
            powers = theta ** jnp.arange(1, coeffs.shape[0] + 1, dtype=coeffs.dtype)
            return y0 + jnp.tensordot(powers.astype(coeffs.dtype), coeffs, axes=1)

        return jax.tree.map(at, self.y0, self.coeffs)


def coefficients(weights: np.ndarray, increments, unravel):
    """Polynomial coefficients `Σ_i weights[i, j] K_i` (one per power, as pytrees
    shaped like the state) from the flat stage increments `K_i` (h times the stage
    derivatives) and dense-output weights of shape (stages, degree)."""
    flat = jnp.stack(increments)
    coeffs = jnp.tensordot(jnp.asarray(weights.T, flat.dtype), flat, axes=1)
    return jax.vmap(unravel)(coeffs)
