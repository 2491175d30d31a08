"""The vector field as odeflow's implicit solvers see it, and its linearisation: by
automatic differentiation, or by a term's own (possibly approximate) Jacobian-vector
product, such as the Gauss-Newton product of a gradient flow.

The solvers work on any term with a scalar control (an ODE, also the adjoint system
diffrax's `BacksolveAdjoint` integrates backwards): over a step the increment of the
state is `h * f(t, y)`, with `h = terms.contr(t0, t1)` the signed step (negative when
time runs backwards) and `f = terms.vf_prod(t, y, args, 1)` the field per unit
control, in the time diffrax steps in."""

from __future__ import annotations

from typing import Callable

import diffrax as dfx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


class LinearizedTerm(dfx.ODETerm):
    """An `ODETerm` that brings its own linearisation.

    `linearize_fn(t, y, args)` returns `(f(t, y, args), jvp)` with `jvp(v)` a product
    of `v` with the Jacobian of `f` or an approximation of it. Linearly implicit
    (Rosenbrock-W) and Newton-type solvers use it in place of `jax.linearize`; a
    W-method keeps its order with any approximation, a Newton iteration its fixed
    point (only the convergence rate changes). Derivatives of a solve (`jax.grad`)
    always use the exact Jacobian."""

    linearize_fn: Callable | None = None


def step_control(terms, t0, t1):
    """The signed step `h` over [t0, t1] of a term with a scalar control."""
    control = terms.contr(t0, t1)
    if not (isinstance(control, (int, float)) or jnp.ndim(control) == 0):
        raise TypeError(
            "odeflow's implicit, Rosenbrock and switching solvers solve ODEs, whose "
            f"control is a scalar step; got a control of shape {jnp.shape(control)}. "
            "Use a diffrax solver for controlled or stochastic differential equations"
        )
    return control


def field(terms, args, unravel, dtype) -> Callable:
    """`f(t, y_flat) -> flat`: the field per unit control."""
    one = jnp.ones((), dtype)
    return lambda t, y: ravel_pytree(terms.vf_prod(t, unravel(y), args, one))[0]


def _own(terms):
    """The user's `LinearizedTerm` inside diffeqsolve's time-direction wrapper (a
    diffrax `WrapTerm` with fields `term` and `direction`), or `None`."""
    inner = getattr(terms, "term", None)
    if isinstance(inner, LinearizedTerm) and inner.linearize_fn is not None:
        return inner
    return None


def linearize(terms, t, y_flat, unravel, args):
    """`(f(t, y), jvp)` on flat vectors at `y_flat` (one evaluation of `f`), with the
    term's own linearisation where it brings one."""
    own = _own(terms)
    if own is not None:
        f_tree, jvp_tree = own.linearize_fn(t * terms.direction, unravel(y_flat), args)
        flat = lambda tree: ravel_pytree(tree)[0]
        return flat(f_tree), lambda v: flat(jvp_tree(unravel(v)))
    return jax.linearize(lambda y: field(terms, args, unravel, y_flat.dtype)(t, y), y_flat)
