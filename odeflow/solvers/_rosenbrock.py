"""Linearly implicit Rosenbrock-W solver (ROS2) with dense or matrix-free linear
solves, counting its own work.

ROS2 (Verwer, Spee, Blom & Hundsdorfer, SIAM J. Sci. Comput. 20, 1999): two stages,
one linear solve each with the same matrix W = I - γhJ, γ = 1 + 1/√2; second order
for any matrix J (a W-method), L-stable with the exact Jacobian, no Newton iteration.
The embedded first-order solution y0 + h k1 gives the error estimate.

With `linear_solver="cg"` or `"gmres"` the matrix is never formed: Krylov solves on
Jacobian-vector products (for a gradient flow, J = -∇²L and W = I + γh∇²L is
symmetric; products are forward-over-reverse Hessian-vector products, or
Gauss-Newton products, which make W positive definite). CG is truncated at negative
curvature and at `krylov_max_iters`; an inexact solve is an approximate W, which the
error estimate then controls.

Work carried across steps (in the solver state, see `CarriedWork`): with
`jacobian_every=k` the dense Jacobian is evaluated only every k accepted steps (a
W-method keeps its order with a stale Jacobian; the factorisation is redone as h
changes), and with `krylov_memory=m` conjugate gradients is preconditioned by an
L-BFGS matrix from the last m directions of earlier solves (`SecantMemory`).
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._linearize import check_linear_solver, linearize
from ._reuse import CarriedWork, check_reuse
from ._stats import work_vector

GAMMA = 1.0 + 2.0**-0.5


class ROS2(dfx.AbstractAdaptiveSolver):
    """Rosenbrock-W method ROS2 with exact work counts.

    **Arguments:**

    - `linear_solver`: `"dense"` (Jacobian from products, LU; any problem),
      `"gmres"` (matrix-free, any problem) or `"cg"` (matrix-free conjugate
      gradients; symmetric Jacobians such as gradient flows).
    - `krylov_rtol`, `krylov_max_iters`: Krylov stopping rule (relative residual,
      products per solve). There is no Newton iteration to correct an inexact solve,
      so the default is tight; gradient flows tolerate far looser solves
      (`"ros2-cg"` uses 1e-2).
    - `krylov_memory`: with `"cg"`, how many directions of earlier CG solves
      precondition the next ones (L-BFGS; 0: unpreconditioned).
    - `jacobian_every`: with `"dense"`, evaluate the Jacobian every this many
      accepted steps and reuse it in between (1: every step).
    - `report_work`: set by `odeflow.solve` (see `ESDIRK`).

    The Jacobian is the term's own approximation where it brings one
    (`LinearizedTerm`, e.g. a Gauss-Newton product), else automatic differentiation.
    """

    linear_solver: str = eqx.field(static=True, default="dense")
    krylov_rtol: float = 1e-6
    krylov_max_iters: int = eqx.field(static=True, default=50)
    krylov_memory: int = eqx.field(static=True, default=0)
    jacobian_every: int = eqx.field(static=True, default=1)
    report_work: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.LocalLinearInterpolation

    def __check_init__(self):
        check_linear_solver(self.linear_solver)
        check_reuse(self.linear_solver, self.krylov_memory, self.jacobian_every)

    def order(self, terms):
        return 2

    def error_order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        return CarriedWork.empty(y0, self)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(t1 - t0, dtype)
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)  # J at (t0, y0)
        carried, solve, work = solver_state.shifted_solver(
            self, jvp, y0_flat.size, h * GAMMA, dtype
        )
        k1, jvps1, memory = solve(f0, carried.memory)
        f1 = ravel_pytree(terms.vf(t0 + h, unravel(y0_flat + h * k1), args))[0]
        k2, jvps2, memory = solve(f1 - 2.0 * k1, memory)
        y1_flat = y0_flat + h * (1.5 * k1 + 0.5 * k2)
        err = 0.5 * h * (k1 + k2)
        y1, y_error = unravel(y1_flat), unravel(err)
        if self.report_work:
            counts = work_vector(nfe=2, num_jvps=jvps1 + jvps2, num_linear_solves=2, **work)
            y_error = (y_error, counts)
        state = carried.remembering(memory)
        return y1, y_error, dict(y0=y0, y1=y1), state, dfx.RESULTS.successful
