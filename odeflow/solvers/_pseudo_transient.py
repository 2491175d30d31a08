"""Pseudo-transient continuation: head for the steady state of dy/dt = f(y) without
paying for trajectory accuracy.

Each step is one linearly implicit (Rosenbrock-) Euler step,

    (I/h - J) δ = f(y),   y ← y + δ,

and the pseudo-time step grows by switched evolution relaxation (SER; Mulder & van
Leer 1985, Kelley & Keyes 1998): h ← h ‖f(y_old)‖ / ‖f(y_new)‖. Far from the
steady state h is small and the iteration follows the flow; near it h → ∞ and the
step becomes Newton's method on f(y) = 0, converging quadratically.

For a gradient flow f = -∇L with J = -∇²L the step solves (∇²L + I/h) δ = -∇L: a
damped Newton step with damping λ = 1/h (Hessian-free optimisation with Tikhonov
damping, Martens 2010). With the Gauss-Newton matrix G in place of ∇²L it is exactly a
Levenberg-Marquardt step with λ = 1/h; PTC and Levenberg-Marquardt differ only in the
rule that updates λ (residual reduction here, the gain ratio of the quadratic model
there; see `odeflow.flow.levenberg_marquardt`).

The step reports the residual norms ‖f(y0)‖, ‖f(y1)‖ (`StepReport.extra`) for
`SERController`, and a local error estimate ½h(f(y1) - f(y0)) (that of implicit
Euler), so under an error-based controller such as `diffrax.PIDController` the same
solver is a first-order linearly implicit integrator.
"""

from typing import Callable, ClassVar

import diffrax as dfx
import equinox as eqx
from equinox import AbstractVar
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._interpolation import PolynomialInterpolation, coefficients
from ._linear import CG, AbstractLinearSolver, as_linear_solver
from ._linearize import field, linearize, step_control
from ._protocol import AbstractCountedSolver, Attempt, StepReport, Work


def rms(x):
    return jnp.sqrt(jnp.mean(x**2))


class AbstractPseudoTransient(AbstractCountedSolver):
    """What every pseudo-transient continuation shares: steps in pseudo-time toward
    a steady state (first step from `pseudo_time_step`), `SERController` by
    default, no trajectory for a backward solve to retrace."""

    max_growth: AbstractVar[float]
    min_growth: AbstractVar[float]
    reject_growth: AbstractVar[float]

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = PolynomialInterpolation

    @property
    def pseudo_time(self) -> bool:
        return True

    def order(self, terms):
        return 1

    def error_order(self, terms):
        return 2

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def default_controller(self, rtol, atol, norm, save_ts=None) -> "SERController":
        del norm, save_ts
        return SERController(rtol, atol, self.max_growth, self.min_growth, self.reject_growth)

    def adjoint_problem(self, adjoint):
        if isinstance(adjoint, dfx.BacksolveAdjoint):
            return ("pseudo-transient continuation follows no trajectory that a backward "
                    "solve could retrace; differentiate through its steps "
                    "(diffrax.RecursiveCheckpointAdjoint or odeflow.solvers.StepCheckpointAdjoint; "
                    "gradient='checkpoint' in an ODEBlock) or, at "
                    "a steady state, with diffrax.ImplicitAdjoint()")
        return None


class PseudoTransient(AbstractPseudoTransient):
    """Pseudo-transient continuation. Its default step-size controller is
    `SERController` (the step grows as the residual falls; the solve steps to `t1`
    once the residual is below `atol + rtol * ‖f(y0)‖`): use it to reach an
    equilibrium (a minimum of the loss), not to follow the trajectory. Registered as
    `"ptc"` (matrix-free CG), `"ptc-gmres"` and `"ptc-dense"`.

    **Arguments:**

    - `linear_solver`: `CG(rtol=1e-2)` by default (symmetric Jacobians: gradient
      flows), `GMRES(...)` or `Dense(...)`; reuse across steps as for `ROS2`.
    - `max_growth`, `min_growth`, `reject_growth`: the settings of its default
      controller (see `SERController`).
    - `report`: set by `odeflow.solve`; `SERController` needs it (it reads the
      residuals from the step report).
    """

    linear_solver: AbstractLinearSolver = eqx.field(default=CG(), converter=as_linear_solver)
    max_growth: float = 10.0
    min_growth: float = 1.2
    reject_growth: float = 2.0
    report: bool = eqx.field(static=True, default=False)

    def init(self, terms, t0, t1, y0, args):
        flat = ravel_pytree(y0)[0]
        return self.linear_solver.carry_init(flat.size, flat.dtype)

    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(step_control(terms, t0, t1), dtype)
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)
        prepared = self.linear_solver.prepare(jvp, y0_flat.size, h, dtype, solver_state)
        k, solve_work, carried = prepared.solve(f0, prepared.carried)  # (I - hJ) k = f0
        y1_flat = y0_flat + h * k
        f1 = field(terms, args, unravel, dtype)(t1, y1_flat)
        err = 0.5 * h * (f1 - f0)
        dense_info = dict(y0=y0, coeffs=coefficients(np.ones((1, 1)), [h * k], unravel))
        work = prepared.work + solve_work + Work.of(nfe=2)
        return Attempt(unravel(y1_flat), unravel(err), dense_info, carried,
                       dfx.RESULTS.successful, work, extra=(rms(f0), rms(f1)))


class SERController(dfx.AbstractStepSizeController):
    """Switched evolution relaxation: an accepted step grows the next by
    ‖f(y0)‖ / ‖f(y1)‖ clipped to [`min_growth`, `max_growth`] (the floor keeps a
    stagnating or slowly rising residual from freezing the step size); a step whose
    residual rose more than `reject_growth` times or is not finite is rejected and
    the step quartered. Once the residual is below `atol + rtol * ‖f(y0)‖` (RMS
    norms) the next step goes to the end of the interval (with h that large, a
    Newton step); should it fail the tests below, the solve ends where it was.

    It reads the residual norms from the solver's `StepReport` (`PseudoTransient`
    with `report=True`; `odeflow.solve` sets it). Needs the first step `dt0`
    (`odeflow.solve` computes one when none is given: `pseudo_time_step`).

    With `loss` (a function of the state, e.g. the loss of a gradient flow), a step
    that increases it is rejected as well: the flow of -∇L never climbs, but a
    Newton-type step can head for any stationary point, a saddle or a maximum
    where the Hessian is indefinite; shrinking the step makes I/h + ∇²L positive
    definite and the step a descent direction again. One evaluation per step (and
    one before the first); the accepted value is carried.

    Steps stay below `max_ratio` times the first (default 1/√ε of the time's dtype,
    about 7e7 in float64): beyond that the damping 1/h no longer changes the step
    (it is Newton's to working precision), and pseudo-time grown without bound
    would leave a rejected step unable to shrink below the resolution of t, so
    that every later step would be rejected.
    """

    rtol: float = 1e-6
    atol: float = 1e-9
    max_growth: float = 10.0
    min_growth: float = 1.2
    reject_growth: float = 2.0
    loss: Callable | None = None
    max_ratio: float | None = None

    reads_reports: ClassVar[bool] = True

    def wrap(self, direction):
        return self

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        if dt0 is None:
            raise ValueError("pseudo-transient continuation needs dt0, the first pseudo-time step "
                             "(odeflow.solve computes one: odeflow.solvers.pseudo_time_step)")
        dtype = ravel_pytree(y0)[0].dtype
        accepted = jnp.asarray(jnp.nan if self.loss is None else self.loss(y0), dtype)
        time_dtype = jnp.result_type(t0, dt0)
        ratio = self.max_ratio if self.max_ratio is not None else 1 / np.sqrt(jnp.finfo(time_dtype).eps)
        largest = jnp.abs(jnp.asarray(dt0, time_dtype)) * ratio
        # ‖f(y0)‖ at the first step, the accepted loss, the largest step, jumping to the end
        return t0 + dt0, (jnp.asarray(jnp.nan, dtype), accepted, largest, jnp.array(False))

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        if not isinstance(y_error, StepReport) or y_error.extra is None:
            raise TypeError(
                "SERController steps by the residual norms in PseudoTransient's step "
                "report: pass PseudoTransient(...).reporting() to diffrax.diffeqsolve "
                "(odeflow.solve does this)"
            )
        before, after = jax.lax.stop_gradient(y_error.extra)  # steps are not differentiated
        initial, accepted, largest, jumping = state
        initial = jnp.where(jnp.isnan(initial), before, initial).astype(initial.dtype)
        steady = after <= self.atol + self.rtol * initial
        ok = jnp.isfinite(after) & (after <= self.reject_growth * before)
        if self.loss is not None:
            candidate = jax.lax.stop_gradient(self.loss(y1_candidate)).astype(accepted.dtype)
            ok = ok & (candidate <= accepted)
            accepted = jnp.where(ok, candidate, accepted)
        ratio = before / jnp.where(after > 0, after, jnp.finfo(jnp.result_type(after)).tiny)
        factor = jnp.clip(ratio, self.min_growth, self.max_growth)
        dt = t1 - t0
        # at a steady state one step across the rest of the interval (Newton's, h being
        # huge; diffrax clips an infinite end to the interval's) polishes the solution;
        # if it fails the tests, the solve ends where it was: both times at the end
        # of the interval, the step rejected, the state kept
        failed_jump = jumping & ~ok
        next_t0 = jnp.where(ok, t1, jnp.where(failed_jump, jnp.inf, t0))
        next_dt = jnp.where(ok, jnp.minimum(dt * factor, largest), 0.25 * dt)
        next_t1 = jnp.where((ok & steady) | failed_jump, jnp.inf, next_t0 + next_dt)
        jumping = ok & steady
        return ok, next_t0, next_t1, False, (initial, accepted, largest, jumping), dfx.RESULTS.successful
