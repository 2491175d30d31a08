"""Linearising the vector field: by automatic differentiation, or by a term's own
(possibly approximate) Jacobian-vector product, such as the generalised Gauss-Newton
product of a gradient flow."""

from __future__ import annotations

from typing import Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from diffrax._term import WrapTerm  # not exported; diffeqsolve wraps every term
from jax.flatten_util import ravel_pytree

from ._krylov import cg, gmres


class LinearizedTerm(dfx.ODETerm):
    """An `ODETerm` that brings its own linearisation.

    `linearize_fn(t, y, args)` returns `(f(t, y, args), jvp)` with `jvp(v)` a product
    of `v` with the Jacobian of `f` or an approximation of it. Linearly implicit
    (Rosenbrock-W) and Newton-type solvers use it in place of `jax.linearize`; a
    W-method keeps its order with any approximation, a Newton iteration its fixed
    point (only the convergence rate changes)."""

    linearize_fn: Callable | None = None


def ode_term(terms):
    """`(term, direction)`: the plain ODE term inside diffeqsolve's time-direction
    wrapper. Anything else (an adjoint term of diffrax's `BacksolveAdjoint`) raises:
    odeflow's implicit solvers treat the vector field as a y-shaped derivative."""
    own, direction = terms, 1
    if isinstance(own, WrapTerm):
        own, direction = own.term, own.direction
    if not isinstance(own, dfx.ODETerm):
        raise TypeError(
            f"odeflow's implicit, Rosenbrock and switching solvers need a plain ODE term, "
            f"got {type(own).__name__}; for gradients use gradient='checkpoint' (or "
            "'direct'/'forward') rather than 'backsolve', or pass a diffrax solver "
            "instance such as diffrax.Kvaerno5()"
        )
    return own, direction


def linearize(terms, t, y_flat, unravel, args):
    """`(f(t, y), jvp)` on flat vectors at `y_flat` (one evaluation of `f`).

    For ODE terms integrated forward in time: the implicit and Rosenbrock solvers
    treat the vector field as a y-shaped derivative. A time-reversed solve raises at
    run time, an adjoint term (diffrax's `BacksolveAdjoint`) at trace time."""
    own, direction = ode_term(terms)
    if isinstance(own, LinearizedTerm) and own.linearize_fn is not None:
        f_tree, jvp_tree = own.linearize_fn(t * direction, unravel(y_flat), args)
        f0, jvp = ravel_pytree(f_tree)[0], lambda v: ravel_pytree(jvp_tree(unravel(v)))[0]
    else:
        f = lambda y: ravel_pytree(terms.vf(t, unravel(y), args))[0]
        f0, jvp = jax.linearize(f, y_flat)
    f0 = eqx.error_if(f0, jnp.asarray(direction) != 1,
                      "odeflow's implicit and Rosenbrock solvers integrate forward in time "
                      "only (t1 > t0)")
    return f0, jvp


LINEAR_SOLVERS = ("dense", "gmres", "cg")


def check_linear_solver(name: str) -> None:
    if name not in LINEAR_SOLVERS:
        raise ValueError(
            f"unknown linear_solver {name!r}; use one of {', '.join(LINEAR_SOLVERS)}"
        )


def check_krylov_memory(linear_solver: str, krylov_memory: int) -> None:
    if not isinstance(krylov_memory, int) or krylov_memory < 0:
        raise ValueError(f"krylov_memory must be an integer >= 0, got {krylov_memory!r}")
    if krylov_memory and linear_solver != "cg":
        raise ValueError(
            "krylov_memory (a recycled L-BFGS preconditioner) needs linear_solver='cg'; "
            f"got linear_solver={linear_solver!r}, so set krylov_memory=0"
        )


def shifted_solver(kind, jvp, n, hg, dtype, rtol, max_iters, *, memory=None, jacobian=None):
    """Solver for the matrix I - hg J of implicit and Rosenbrock steps.

    Returns `(solve, setup_work)`: `solve(b, observed=None) -> (x, matvecs,
    observed)`, and the work of building it (`"dense"`: one Jacobian from `n`
    products, none if `jacobian` is given, and one LU factorisation;
    `"gmres"`/`"cg"`: none, each solve costs `matvecs` Jacobian-vector products).

    With `"cg"`, a `SecantMemory` as `memory` preconditions every solve (L-BFGS
    from earlier solves' directions), and a `SecantMemory` passed as `observed`
    collects this solve's directions and comes back updated."""
    if kind == "dense":
        work = dict(num_factorizations=1)
        if jacobian is None:
            jacobian = jax.vmap(jvp, out_axes=1)(jnp.eye(n, dtype=dtype))
            work["num_jacobians"] = 1
        lu = jsl.lu_factor(jnp.eye(n, dtype=dtype) - hg * jacobian)
        solve = lambda b, observed=None: (jsl.lu_solve(lu, b), jnp.zeros((), jnp.int32), observed)
        return solve, work
    matvec = lambda v: v - hg * jvp(v)
    if kind == "gmres":

        def solve(b, observed=None):
            x, used, _ = gmres(matvec, b, rtol=rtol, max_iters=max_iters)
            return x, used, observed

        return solve, {}
    precondition = None if memory is None else memory.inverse(hg)

    def solve(b, observed=None):
        observe = None if observed is None else (lambda mem, p, ap, ok: mem.remember(p, ap, hg, ok))
        x, used, _, observed = cg(matvec, b, rtol=rtol, max_iters=max_iters,
                                  precondition=precondition, observe=observe, observed=observed)
        return x, used, observed

    return solve, {}
