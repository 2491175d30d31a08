"""ESDIRK solvers (Kvaerno's methods, implicit Euler) that count their own work.

diffrax's built-in implicit solvers do not report Newton iterations, so odeflow
re-implements the stepping for the same Butcher tableaus with a simplified Newton
iteration (one dense AD Jacobian and one LU factorisation per step), and reports
every vector-field evaluation, Jacobian, factorisation, linear solve and Newton
failure. The solver subclasses `diffrax.AbstractAdaptiveSolver`, so it runs inside
`diffrax.diffeqsolve` with any step-size controller.

References: Kværnø, "Singly diagonally implicit Runge-Kutta methods with an explicit
first stage", BIT 44 (2004); Hairer & Wanner, "Solving Ordinary Differential
Equations II", section IV.8 (simplified Newton iterations and their stopping test);
Knoll & Keyes, "Jacobian-free Newton-Krylov methods", J. Comput. Phys. 193 (2004).

With `linear_solver="gmres"` or `"cg"` the Newton matrix I - hγJ is never formed:
each Newton correction is a Krylov solve on Jacobian-vector products at the start of
the step (for a gradient flow, Hessian-vector products, forward over reverse). The
Krylov tolerance `krylov_rtol` is the forcing term of the inexact Newton iteration;
the Newton stopping test is unchanged, so an inexact solve costs iterations, not
accuracy.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._linearize import check_linear_solver, linearize, shifted_solver
from ._stats import work_vector
from ._tableau import lower_rows
from ._tableau import to_tuple as _to_tuple


class Tableau(eqx.Module):
    """An ESDIRK tableau with an explicit first stage (`a[0] == 0`) and constant
    diagonal `gamma`. `b_error` gives the local error estimate `h * sum(b_error * k)`;
    `a_predictor` (optional) gives initial guesses of the implicit stages."""

    a: tuple = eqx.field(static=True, converter=_to_tuple)
    b: tuple = eqx.field(static=True, converter=_to_tuple)
    b_error: tuple = eqx.field(static=True, converter=_to_tuple)
    c: tuple = eqx.field(static=True, converter=_to_tuple)
    gamma: float = eqx.field(static=True)
    a_predictor: tuple | None = eqx.field(static=True, converter=_to_tuple)
    order: int = eqx.field(static=True)
    error_order: int = eqx.field(static=True)

    @property
    def stages(self) -> int:
        return len(self.b)

    @classmethod
    def from_diffrax(cls, solver_cls: type) -> "Tableau":
        """Dense arrays from a diffrax ESDIRK solver class (`diffrax.Kvaerno5`, ...)."""
        tab = solver_cls.tableau
        s = len(tab.b_sol)
        a = lower_rows(tab.a_lower, s)
        a[np.diag_indices(s)] = tab.a_diagonal
        instance = solver_cls()
        return cls(
            a=a,
            b=np.asarray(tab.b_sol),
            b_error=np.asarray(tab.b_error),
            c=np.concatenate([[0.0], tab.c]),
            gamma=float(tab.a_diagonal[1]),
            a_predictor=lower_rows(tab.a_predictor, s),
            order=instance.order(None),
            error_order=instance.error_order(None),
        )


def implicit_euler_tableau() -> Tableau:
    """Backward Euler as a two-stage ESDIRK; the error estimate is half the difference
    to explicit Euler (the trapezoidal-rule estimate used by `diffrax.ImplicitEuler`)."""
    return Tableau(
        a=np.array([[0.0, 0.0], [0.0, 1.0]]),
        b=np.array([0.0, 1.0]),
        b_error=np.array([-0.5, 0.5]),
        c=np.array([0.0, 1.0]),
        gamma=1.0,
        a_predictor=None,
        order=1,
        error_order=2,
    )


class _Newton(eqx.Module):
    """Static settings of the simplified Newton iteration."""

    rtol: float
    atol: float
    kappa: float
    max_iters: int


def _scaled_rms(dz, z, rtol, atol):
    return jnp.sqrt(jnp.mean((dz / (atol + rtol * jnp.abs(z))) ** 2))


def _newton_stage(f, lin_solve, psi, k_guess, hg, newton: _Newton):
    """Solve k = f(psi + hg * k) by simplified Newton with a fixed matrix (I - hg J);
    `lin_solve(b)` returns `(x, matvecs, _)` with x ≈ (I - hg J)⁻¹ b.

    Returns (k, converged, iterations, matvecs)."""

    def cond(carry):
        _, it, _, done, failed, _ = carry
        return (it < newton.max_iters) & ~done & ~failed

    def body(carry):
        k, it, prev_norm, _, _, matvecs = carry
        residual = k - f(psi + hg * k)
        dk, used, _ = lin_solve(-residual)
        k = k + dk
        norm = _scaled_rms(hg * dk, psi + hg * k, newton.rtol, newton.atol)
        rate = norm / jnp.where(prev_norm > 0, prev_norm, jnp.inf)
        contracted = (it >= 1) & (rate < 1) & (rate / (1 - rate) * norm <= newton.kappa)
        done = (norm <= newton.kappa) | contracted
        failed = ~jnp.isfinite(norm) | ((it >= 1) & (rate > 2.0))
        return k, it + 1, norm, done, failed, matvecs + used

    zero = jnp.zeros((), psi.dtype)
    count = jnp.zeros((), jnp.int32)
    init = (k_guess, count, zero, jnp.array(False), jnp.array(False), count)
    k, iters, _, done, _, matvecs = jax.lax.while_loop(cond, body, init)
    return k, done, iters, matvecs


class ESDIRK(dfx.AbstractAdaptiveSolver):
    """Explicit-first-stage singly diagonally implicit Runge-Kutta solver with exact
    work counts. Use `ESDIRK.kvaerno3()`, `ESDIRK.kvaerno5()` or
    `ESDIRK.implicit_euler()`, or registered names such as `"kvaerno3"` (dense) and
    `"kvaerno3-gmres"` (Newton-Krylov).

    **Arguments:**

    - `tableau`: the method's coefficients (`Tableau`).
    - `linear_solver`: `"dense"` (AD Jacobian and LU once per step), `"gmres"`
      (matrix-free, any Jacobian) or `"cg"` (matrix-free, symmetric Jacobians such as
      gradient flows; truncated at negative curvature).
    - `krylov_rtol`, `krylov_max_iters`: Krylov stopping rule for each Newton
      correction (relative residual; products per solve).
    - `newton_rtol`, `newton_atol`: tolerances of the Newton stopping test; `None`
      takes the step-size controller's tolerances (set by `odeflow.solve`), else
      `1e-6`/`1e-9`.
    - `kappa`: Newton stops when the scaled update is below `kappa` (Hairer-Wanner).
    - `max_newton_iters`: iterations before a step counts as a Newton failure and is
      rejected (the controller then shrinks the step).
    - `report_work`: set by `odeflow.solve`; makes `step` return its work counts
      beside the error estimate for `odeflow`'s counting controller. Leave `False`
      when calling `diffrax.diffeqsolve` directly.
    """

    tableau: Tableau
    linear_solver: str = eqx.field(static=True, default="dense")
    krylov_rtol: float = 1e-2
    krylov_max_iters: int = eqx.field(static=True, default=30)
    newton_rtol: float | None = None
    newton_atol: float | None = None
    kappa: float = 1e-2
    max_newton_iters: int = 10
    report_work: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.ThirdOrderHermitePolynomialInterpolation

    def __check_init__(self):
        check_linear_solver(self.linear_solver)

    @classmethod
    def kvaerno3(cls, **kwargs) -> "ESDIRK":
        return cls(Tableau.from_diffrax(dfx.Kvaerno3), **kwargs)

    @classmethod
    def kvaerno5(cls, **kwargs) -> "ESDIRK":
        return cls(Tableau.from_diffrax(dfx.Kvaerno5), **kwargs)

    @classmethod
    def implicit_euler(cls, **kwargs) -> "ESDIRK":
        return cls(implicit_euler_tableau(), **kwargs)

    def order(self, terms):
        return self.tableau.order

    def error_order(self, terms):
        return self.tableau.error_order

    def init(self, terms, t0, t1, y0, args):
        return None

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del solver_state, made_jump
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(t1 - t0, dtype)
        tab = self.tableau
        newton = _Newton(
            rtol=1e-6 if self.newton_rtol is None else self.newton_rtol,
            atol=1e-9 if self.newton_atol is None else self.newton_atol,
            kappa=self.kappa,
            max_iters=self.max_newton_iters,
        )

        def f_at(t):
            return lambda y: ravel_pytree(terms.vf(t, unravel(y), args))[0]

        hg = h * tab.gamma
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)  # f0 comes with J
        lin_solve, setup_work = shifted_solver(
            self.linear_solver, jvp, y0_flat.size, hg, dtype, self.krylov_rtol, self.krylov_max_iters
        )
        ks = [f0]
        ok = jnp.array(True)
        iters = matvecs = jnp.zeros((), jnp.int32)
        for i in range(1, tab.stages):
            psi = y0_flat + h * sum(tab.a[i][j] * ks[j] for j in range(i))
            if tab.a_predictor is None:
                guess = ks[-1]
            else:
                guess = sum(tab.a_predictor[i][j] * ks[j] for j in range(i))
            k, converged, it, used = _newton_stage(
                f_at(t0 + tab.c[i] * h), lin_solve, psi, guess, hg, newton
            )
            ks.append(k)
            ok = ok & converged
            iters = iters + it
            matvecs = matvecs + used
        y1_flat = y0_flat + h * sum(b * k for b, k in zip(tab.b, ks) if b != 0)
        err = h * sum(e * k for e, k in zip(tab.b_error, ks) if e != 0)
        err = jnp.where(ok, err, jnp.inf)
        y1, y_error = unravel(y1_flat), unravel(err)
        dense_info = dict(y0=y0, y1=y1, k0=unravel(h * f0), k1=unravel(h * ks[-1]))
        if self.report_work:
            work = work_vector(
                nfe=iters + 1,  # + f0, evaluated with the linearisation
                num_jvps=matvecs,
                num_linear_solves=iters,
                num_newton_iters=iters,
                num_newton_failures=~ok,
                **setup_work,
            )
            y_error = (y_error, work)
        return y1, y_error, dense_info, None, dfx.RESULTS.successful
