"""Linearly implicit Rosenbrock-W solver (ROS2) with dense or matrix-free linear
solves, counting its own work.

ROS2 (Verwer, Spee, Blom & Hundsdorfer, SIAM J. Sci. Comput. 20, 1999): two stages,
one linear solve each with the same matrix W = I - γhJ, γ = 1 + 1/√2; second order
for any matrix J (a W-method), L-stable with the exact Jacobian, no Newton iteration.
The embedded first-order solution y0 + h k1 gives the error estimate.

With `linear_solver="cg"` the matrix is never formed: conjugate gradients on
Jacobian-vector products (for a gradient flow, J = -∇²L and W = I + γh∇²L is
symmetric; products are forward-over-reverse Hessian-vector products). CG is
truncated at negative curvature and at `cg_max_iters`; an inexact solve is an
approximate W, which the error estimate then controls.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.flatten_util import ravel_pytree

from ._krylov import cg
from ._stats import work_vector

GAMMA = 1.0 + 2.0**-0.5


class ROS2(dfx.AbstractAdaptiveSolver):
    """Rosenbrock-W method ROS2 with exact work counts.

    **Arguments:**

    - `linear_solver`: `"dense"` (AD Jacobian, LU; any problem) or `"cg"`
      (matrix-free conjugate gradients; symmetric Jacobians such as gradient flows).
    - `cg_rtol`, `cg_max_iters`: CG stopping rule (relative residual, products).
    - `report_work`: set by `odeflow.solve` (see `ESDIRK`).
    """

    linear_solver: str = eqx.field(static=True, default="dense")
    cg_rtol: float = 1e-2
    cg_max_iters: int = eqx.field(static=True, default=50)
    report_work: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.LocalLinearInterpolation

    def __check_init__(self):
        if self.linear_solver not in ("dense", "cg"):
            raise ValueError(
                f"unknown linear_solver {self.linear_solver!r}; use 'dense' or 'cg'"
            )

    def order(self, terms):
        return 2

    def error_order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def _solver(self, jvp, n, hg, dtype):
        """(solve(b) -> (x, jvps), work of building it)."""
        if self.linear_solver == "dense":
            jac = jax.vmap(jvp, out_axes=1)(jnp.eye(n, dtype=dtype))
            lu = jsl.lu_factor(jnp.eye(n, dtype=dtype) - hg * jac)
            return lambda b: (jsl.lu_solve(lu, b), 0), dict(num_jacobians=1, num_factorizations=1)
        matvec = lambda v: v - hg * jvp(v)

        def solve(b):
            x, iters, _ = cg(matvec, b, rtol=self.cg_rtol, max_iters=self.cg_max_iters)
            return x, iters

        return solve, {}

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(t1 - t0, dtype)
        f = lambda t: (lambda y: ravel_pytree(terms.vf(t, unravel(y), args))[0])
        f0, jvp = jax.linearize(f(t0), y0_flat)  # J at (t0, y0); f0 comes with it
        solve, work = self._solver(jvp, y0_flat.size, h * GAMMA, dtype)
        k1, jvps1 = solve(f0)
        f1 = f(t0 + h)(y0_flat + h * k1)
        k2, jvps2 = solve(f1 - 2.0 * k1)
        y1_flat = y0_flat + h * (1.5 * k1 + 0.5 * k2)
        err = 0.5 * h * (k1 + k2)
        y1, y_error = unravel(y1_flat), unravel(err)
        if self.report_work:
            counts = work_vector(nfe=2, num_jvps=jvps1 + jvps2, num_linear_solves=2, **work)
            y_error = (y_error, counts)
        return y1, y_error, dict(y0=y0, y1=y1), None, dfx.RESULTS.successful
