"""Linearly implicit Rosenbrock-W solver (ROS2) with dense or matrix-free linear
solves, counting its own work.

ROS2 (Verwer, Spee, Blom & Hundsdorfer, SIAM J. Sci. Comput. 20, 1999): two stages,
one linear solve each with the same matrix W = I - γhJ, γ = 1 + 1/√2; second order
for any matrix J (a W-method), L-stable with the exact Jacobian, no Newton iteration.
The embedded first-order solution y0 + h k1 gives the error estimate.

With a Krylov linear solver the matrix is never formed: Krylov solves on
Jacobian-vector products (for a gradient flow, J = -∇²L and W = I + γh∇²L is
symmetric; products are forward-over-reverse Hessian-vector products, or
Gauss-Newton products, which make W positive definite). CG is truncated at negative
curvature and at its iteration cap; an inexact solve is an approximate W, which the
error estimate then controls.

Dense output: y(t0 + θh) = y0 + h (β1(θ) k1 + β2(θ) k2) with β2 = θ(θ/2 - γ)/(1 - 2γ)
and β1 = θ + β2, second order with the exact Jacobian (first order with another J)
and equal to the step at θ = 1. The stages are filtered by W⁻¹, so the interpolant
stays bounded across stiff transients where one built from f(y0) would not.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._interpolation import PolynomialInterpolation, coefficients
from ._linear import AbstractLinearSolver, Dense, as_linear_solver
from ._linearize import field, linearize, step_control
from ._protocol import AbstractCountedSolver, Attempt, Work

GAMMA = 1.0 + 2.0**-0.5
_BETA2 = np.array([-GAMMA, 0.5]) / (1.0 - 2.0 * GAMMA)  # coefficients of θ, θ²
DENSE = np.array([np.array([1.0, 0.0]) + _BETA2, _BETA2])  # rows: k1, k2; columns: θ, θ²


class ROS2(AbstractCountedSolver):
    """Rosenbrock-W method ROS2 with exact work counts.

    **Arguments:**

    - `linear_solver`: `Dense()` (Jacobian from products, LU; any problem;
      `Dense(jacobian_every=k)` reuses it for k accepted steps), `GMRES(...)`
      (matrix-free, any problem) or `CG(...)` (matrix-free conjugate gradients;
      symmetric Jacobians such as gradient flows; `CG(memory=m)` recycles
      directions as a preconditioner). There is no Newton iteration to correct an
      inexact solve, so Krylov solves should be tight; gradient flows tolerate far
      looser ones (`"ros2-cg"` uses `CG(rtol=1e-2)`).
    - `report`: set by `odeflow.solve` (see `ESDIRK`).

    The Jacobian is the term's own approximation where it brings one
    (`LinearizedTerm`, e.g. a Gauss-Newton product), else automatic differentiation.
    """

    linear_solver: AbstractLinearSolver = eqx.field(default=Dense(), converter=as_linear_solver)
    report: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = PolynomialInterpolation

    dense_degree: ClassVar[int] = 2

    def order(self, terms):
        return 2

    def error_order(self, terms):
        return 2

    def init(self, terms, t0, t1, y0, args):
        flat = ravel_pytree(y0)[0]
        return self.linear_solver.carry_init(flat.size, flat.dtype)

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(step_control(terms, t0, t1), dtype)
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)  # J at (t0, y0)
        prepared = self.linear_solver.prepare(jvp, y0_flat.size, h * GAMMA, dtype, solver_state)
        k1, work1, carried = prepared.solve(f0, prepared.carried)
        f1 = field(terms, args, unravel, dtype)(t1, y0_flat + h * k1)
        k2, work2, carried = prepared.solve(f1 - 2.0 * k1, carried)
        y1_flat = y0_flat + h * (1.5 * k1 + 0.5 * k2)
        err = 0.5 * h * (k1 + k2)
        dense_info = dict(y0=y0, coeffs=coefficients(DENSE, [h * k1, h * k2], unravel))
        work = prepared.work + work1 + work2 + Work.of(nfe=2)
        return Attempt(unravel(y1_flat), unravel(err), dense_info, carried,
                       dfx.RESULTS.successful, work)
