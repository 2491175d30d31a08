"""ESDIRK solvers (Kvaerno's methods, implicit Euler) that count their own work.

diffrax's built-in implicit solvers do not report Newton iterations, so odeflow
steps the same Butcher tableaus with a simplified Newton iteration (one Jacobian
and one factorisation per step, or matrix-free Krylov solves) and reports every
vector-field evaluation, Jacobian, factorisation, linear solve and Newton failure.

References: Kværnø, "Singly diagonally implicit Runge-Kutta methods with an explicit
first stage", BIT 44 (2004); Hairer & Wanner, "Solving Ordinary Differential
Equations II", section IV.8 (simplified Newton iterations and their stopping test);
Knoll & Keyes, "Jacobian-free Newton-Krylov methods", J. Comput. Phys. 193 (2004).

With a Krylov linear solver the Newton matrix I - hγJ is never formed: each Newton
correction is a Krylov solve on Jacobian-vector products at the start of the step
(for a gradient flow, Hessian-vector products, forward over reverse). The Krylov
tolerance is the forcing term of the inexact Newton iteration; the Newton stopping
test is unchanged, so an inexact solve costs iterations, not accuracy.

Dense output: Kvaerno's methods are stiffly accurate with stage order 2, which lets
a polynomial in the fraction of the step through the stage derivatives reach order
3 (Kvaerno 3) and 4 (Kvaerno 5) between steps, with the slopes at both ends equal to
the vector field (so the interpolant is C1 across steps). `dense_weights` solves the
continuous order conditions for those weights.
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._interpolation import PolynomialInterpolation, coefficients
from ._linear import AbstractLinearSolver, Dense, as_linear_solver
from ._linearize import field, linearize, step_control
from ._newton import Newton, newton_stage
from ._protocol import AbstractCountedSolver, Attempt, Work
from ._tableau import lower_rows
from ._tableau import to_tuple as _to_tuple


def dense_weights(a, b, c, order: int, degree: int) -> np.ndarray:
    """Weights `B` (stages x degree) of the continuous extension y0 + h Σ_i b_i(θ) k_i,
    b_i(θ) = Σ_j B[i, j] θ^(j+1), for an ESDIRK of stage order 2 that is stiffly
    accurate: the continuous order conditions up to `order` (3 or 4; with stage
    order 2 the remaining trees of order 4 reduce to Σ b c³ and Σ b (A c²)),
    b(1) = b, b'(0) = e_1 and b'(1) = e_s; the least-norm solution."""
    s = len(b)
    moments = [np.ones(s), c, c**2, c**3, a @ c**2][: 3 if order == 3 else 5]
    targets = [{1: 1.0}, {2: 1 / 2}, {3: 1 / 3}, {4: 1 / 4}, {4: 1 / 12}]
    rows, rhs = [], []

    def add(mask, value):
        rows.append(mask.ravel())
        rhs.append(value)

    for phi, target in zip(moments, targets):
        for j in range(degree):
            mask = np.zeros((s, degree))
            mask[:, j] = phi
            add(mask, target.get(j + 1, 0.0))
    powers = np.arange(1, degree + 1)
    for i in range(s):
        for weights, value in ((np.ones(degree), b[i]), (powers == 1, float(i == 0)),
                               (powers, float(i == s - 1))):
            mask = np.zeros((s, degree))
            mask[i] = weights
            add(mask, value)
    system, rhs = np.array(rows), np.array(rhs)
    weights = np.linalg.lstsq(system, rhs, rcond=None)[0]
    residual = np.abs(system @ weights - rhs).max()
    assert residual < 1e-12, f"no continuous extension of order {order} (residual {residual})"
    return weights.reshape(s, degree)


class Tableau(eqx.Module):
    """An ESDIRK tableau with an explicit first stage (`a[0] == 0`) and constant
    diagonal `gamma`. `b_error` gives the local error estimate `h * sum(b_error * k)`;
    `a_predictor` (optional) gives initial guesses of the implicit stages; `dense`
    the dense-output weights (stages x degree, see `dense_weights`)."""

    a: tuple = eqx.field(static=True, converter=_to_tuple)
    b: tuple = eqx.field(static=True, converter=_to_tuple)
    b_error: tuple = eqx.field(static=True, converter=_to_tuple)
    c: tuple = eqx.field(static=True, converter=_to_tuple)
    gamma: float = eqx.field(static=True)
    a_predictor: tuple | None = eqx.field(static=True, converter=_to_tuple)
    dense: tuple = eqx.field(static=True, converter=_to_tuple)
    order: int = eqx.field(static=True)
    error_order: int = eqx.field(static=True)

    @property
    def stages(self) -> int:
        return len(self.b)

    @classmethod
    def from_diffrax(cls, solver_cls: type, dense_order: int) -> "Tableau":
        """Dense arrays from a diffrax ESDIRK solver class (`diffrax.Kvaerno5`, ...),
        with a continuous extension of order `dense_order`."""
        tab = solver_cls.tableau
        s = len(tab.b_sol)
        a = lower_rows(tab.a_lower, s)
        a[np.diag_indices(s)] = tab.a_diagonal
        b, c = np.asarray(tab.b_sol), np.concatenate([[0.0], tab.c])
        instance = solver_cls()
        return cls(
            a=a,
            b=b,
            b_error=np.asarray(tab.b_error),
            c=c,
            gamma=float(tab.a_diagonal[1]),
            a_predictor=lower_rows(tab.a_predictor, s),
            dense=dense_weights(a, b, c, dense_order, dense_order),
            order=instance.order(None),
            error_order=instance.error_order(None),
        )


def implicit_euler_tableau() -> Tableau:
    """Backward Euler as a two-stage ESDIRK; the error estimate is half the difference
    to explicit Euler (the trapezoidal-rule estimate used by `diffrax.ImplicitEuler`);
    linear dense output."""
    return Tableau(
        a=np.array([[0.0, 0.0], [0.0, 1.0]]),
        b=np.array([0.0, 1.0]),
        b_error=np.array([-0.5, 0.5]),
        c=np.array([0.0, 1.0]),
        gamma=1.0,
        a_predictor=None,
        dense=np.array([[0.0], [1.0]]),
        order=1,
        error_order=2,
    )


class ESDIRK(AbstractCountedSolver, dfx.AbstractImplicitSolver):
    """Explicit-first-stage singly diagonally implicit Runge-Kutta solver with exact
    work counts. Use `ESDIRK.kvaerno3()`, `ESDIRK.kvaerno5()` or
    `ESDIRK.implicit_euler()` (keyword arguments as below), or registered names such
    as `"kvaerno3"` (dense) and `"kvaerno3-gmres"` (Newton-Krylov).

    **Arguments:**

    - `tableau`: the method's coefficients (`Tableau`).
    - `linear_solver`: `Dense()` (a Jacobian and LU per step), `GMRES(...)`
      (matrix-free, any Jacobian) or `CG(...)` (matrix-free, symmetric Jacobians such
      as gradient flows); the names `"dense"`, `"gmres"`, `"cg"` are shorthand.
    - `root_finder`: the Newton iteration's settings (`Newton`); by default its
      tolerances are the step-size controller's.
    - `report`: hand the controller a `StepReport` (see `odeflow.solvers.count_work`);
      set by `odeflow.solve`.

    Differentiable in forward and reverse mode: each stage's Newton solve is
    differentiated by the implicit function theorem.
    """

    tableau: Tableau
    linear_solver: AbstractLinearSolver = eqx.field(default=Dense(), converter=as_linear_solver)
    root_finder: Newton = Newton.from_controller()
    report: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = PolynomialInterpolation

    @property
    def root_find_max_steps(self) -> int:
        return self.root_finder.max_iters

    @property
    def dense_degree(self) -> int:
        """Degree of the dense-output polynomial."""
        return len(self.tableau.dense[0])

    @property
    def steps_to_save_points(self) -> bool:
        """Kvaerno 5's continuous extension is of order 4 (the most its stages allow),
        and its long steps on stiff problems leave 10x the tolerance between steps
        (Robertson); its default controller steps to the save times instead."""
        return self.dense_degree < self.tableau.order

    @classmethod
    def kvaerno3(cls, **kwargs) -> "ESDIRK":
        return cls(Tableau.from_diffrax(dfx.Kvaerno3, dense_order=3), **kwargs)

    @classmethod
    def kvaerno5(cls, **kwargs) -> "ESDIRK":
        return cls(Tableau.from_diffrax(dfx.Kvaerno5, dense_order=4), **kwargs)

    @classmethod
    def implicit_euler(cls, **kwargs) -> "ESDIRK":
        return cls(implicit_euler_tableau(), **kwargs)

    def order(self, terms):
        return self.tableau.order

    def error_order(self, terms):
        return self.tableau.error_order

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
        tab = self.tableau
        f = field(terms, args, unravel, dtype)
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)  # f0 comes with J
        hg = h * tab.gamma
        prepared = self.linear_solver.prepare(jvp, y0_flat.size, hg, dtype, solver_state)
        carried, work = prepared.carried, prepared.work + Work.of(nfe=1)
        # One Newton solve traced for all implicit stages (a loop over the stages, not
        # one copy per stage): Kvaerno 5 compiles in half the time (gradients too), for
        # about 5% more run time on small stiff systems (Robertson, HIRES).
        a = np.tril(np.asarray(tab.a), -1)
        predictor = None if tab.a_predictor is None else np.asarray(tab.a_predictor)

        def stage(carry, i):
            ks, ok, work, carried = carry
            psi = y0_flat + h * (jnp.asarray(a, dtype)[i] @ ks)
            if predictor is None:
                guess = ks[i - 1]
            else:
                guess = jnp.asarray(predictor, dtype)[i] @ ks
            stage_t = t0 + jnp.asarray(tab.c, jnp.result_type(t0))[i] * (t1 - t0)
            k, converged, stage_work, carried = newton_stage(
                lambda y: f(stage_t, y), prepared._replace(carried=carried), psi, guess,
                hg, self.root_finder, self.linear_solver,
            )
            return (ks.at[i].set(k), ok & converged, work + stage_work, carried), None

        ks = jnp.zeros((tab.stages, y0_flat.size), dtype).at[0].set(f0)
        init = (ks, jnp.array(True), work, carried)
        (ks, ok, work, carried), _ = jax.lax.scan(stage, init, jnp.arange(1, tab.stages),
                                                  unroll=tab.stages == 2)  # implicit Euler: no loop
        increments = list(h * ks)
        y1_flat = y0_flat + sum(b * k for b, k in zip(tab.b, increments) if b != 0)
        err = sum(e * k for e, k in zip(tab.b_error, increments) if e != 0)
        err = jnp.where(ok, err, jnp.inf)
        dense_info = dict(y0=y0, coeffs=coefficients(np.asarray(tab.dense), increments, unravel))
        return Attempt(unravel(y1_flat), unravel(err), dense_info, carried,
                       dfx.RESULTS.successful, work)
