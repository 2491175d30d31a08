"""Regularisers that keep a neural ODE's dynamics easy to integrate (Finlay, Jacobsen,
Nurbekyan & Oberman 2020, "How to train your neural ODE"): the kinetic energy
∫ ||f(t, h)||² dt and the Jacobian's Frobenius norm ∫ ||∂f/∂h||_F² dt, the latter
estimated without forming the Jacobian by Hutchinson's ε^T ∂f/∂h with Gaussian ε.
Both are integrated beside the state, in the same solve. Penalising them keeps the
NFE from growing during training."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree

from ..solvers import SolverStats
from ._block import ODEBlock


class Penalties(NamedTuple):
    """`kinetic`: ∫ ||f||² dt; `jacobian`: a one-sample Hutchinson estimate of
    ∫ ||∂f/∂h||_F² dt. Each is summed over the whole state (for a batch solved as
    one state, divide by the batch size for a per-sample value)."""

    kinetic: Array
    jacobian: Array


def _sum_squares(tree) -> Array:
    return sum(jnp.sum(x**2) for x in jax.tree.leaves(tree))


class _PenalisedField(eqx.Module):
    vector_field: Callable
    noise: PyTree

    def __call__(self, t, state, args):
        h, _, _ = state
        f, vjp = jax.vjp(lambda x: self.vector_field(t, x, args), h)
        (noise_jacobian,) = vjp(self.noise)
        return f, _sum_squares(f), _sum_squares(noise_jacobian)


def solve_penalised(block: ODEBlock, h: PyTree, args: Any = None, *,
                    key: PRNGKeyArray) -> tuple[PyTree, SolverStats, Penalties]:
    """`(h(t1), stats, Penalties)`: `block`'s solve with the kinetic energy and the
    Jacobian-norm estimate (noise drawn from `key`) integrated beside the state, with
    the block's solver, tolerances and gradient method. NFE counts evaluations of
    the augmented field (each is one evaluation of `f` plus one vector-Jacobian
    product)."""
    leaves, treedef = jax.tree.flatten(h)
    keys = jax.random.split(key, len(leaves))
    noise = jax.tree.unflatten(treedef, [jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
                                         for k, x in zip(keys, leaves)])
    augmented = dataclasses.replace(block, vector_field=_PenalisedField(block.vector_field, noise))
    zero = jnp.zeros((), jnp.result_type(leaves[0]))
    (h1, kinetic, jacobian), stats = augmented.solve((h, zero, zero), args)
    return h1, stats, Penalties(kinetic, jacobian)
