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
there; see `odeflow.training.levenberg_marquardt`).
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


class PseudoTransient(dfx.AbstractAdaptiveSolver):
    """Pseudo-transient continuation with SER step growth. Runs under
    `odeflow.solve` / `gradient_flow` with its own step-size rule
    (`SERController`), not an error estimate: use it to reach an equilibrium (a
    minimum of the loss), not to follow the trajectory. Registered as `"ptc"`
    (matrix-free CG), `"ptc-gmres"` and `"ptc-dense"`.

    **Arguments:**

    - `linear_solver`, `krylov_rtol`, `krylov_max_iters`, `krylov_memory`,
      `jacobian_every`: as for `ROS2` (reuse across steps).
    - `max_growth`: largest step-size increase per step.
    - `min_growth`: smallest increase after an accepted step (> 1 guarantees the
      step reaches Newton's regime even where the residual stagnates).
    - `reject_growth`: a step is rejected and the step size quartered when ‖f‖ grows
      by more than this factor or becomes non-finite.
    - `steady_rtol`, `steady_atol`: the steady state is reached when
      rms(f(y)) <= steady_atol + steady_rtol * rms(f(y0)); the controller then steps
      straight to `t1` (pseudo-time carries no meaning). `None` takes the
      controller tolerances `rtol`, `atol` given to `odeflow.solve`.
    - `report_work`: set by `odeflow.solve` (see `ESDIRK`).
    """

    linear_solver: str = eqx.field(static=True, default="cg")
    krylov_rtol: float = 1e-2
    krylov_max_iters: int = eqx.field(static=True, default=50)
    krylov_memory: int = eqx.field(static=True, default=0)
    jacobian_every: int = eqx.field(static=True, default=1)
    max_growth: float = 10.0
    min_growth: float = 1.2
    reject_growth: float = 2.0
    steady_rtol: float | None = None
    steady_atol: float | None = None
    report_work: bool = eqx.field(static=True, default=False)

    term_structure: ClassVar = dfx.AbstractTerm
    interpolation_cls: ClassVar = dfx.LocalLinearInterpolation

    def __check_init__(self):
        check_linear_solver(self.linear_solver)
        check_reuse(self.linear_solver, self.krylov_memory, self.jacobian_every)

    def order(self, terms):
        return 1

    def error_order(self, terms):
        return 1

    def init(self, terms, t0, t1, y0, args):
        initial = jnp.asarray(jnp.nan)  # rms(f(y0)), filled in by the first step
        carried = CarriedWork.empty(y0, self)
        return initial, carried

    def func(self, terms, t0, y0, args):
        return terms.vf(t0, y0, args)

    def controller(self) -> "SERController":
        return SERController(self.max_growth, self.min_growth, self.reject_growth)

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        h = jnp.asarray(t1 - t0, dtype)
        initial, carried = solver_state
        f0, jvp = linearize(terms, t0, y0_flat, unravel, args)
        carried, solve, work = carried.shifted_solver(self, jvp, y0_flat.size, h, dtype)
        k, jvps, memory = solve(f0, carried.memory)  # (I - hJ) k = f0, δ = h k
        y1 = unravel(y0_flat + h * k)
        f1 = ravel_pytree(terms.vf(t1, y1, args))[0]
        rms = lambda x: jnp.sqrt(jnp.mean(x**2))
        initial = jnp.where(jnp.isnan(initial), rms(f0), initial).astype(dtype)
        rtol = 1e-6 if self.steady_rtol is None else self.steady_rtol
        atol = 1e-9 if self.steady_atol is None else self.steady_atol
        steady = rms(f1) <= atol + rtol * initial
        residuals = (rms(f0), rms(f1), steady)
        if self.report_work:
            residuals = (residuals, work_vector(nfe=2, num_jvps=jvps, num_linear_solves=1, **work))
        state = (initial, carried.remembering(memory))
        return y1, residuals, dict(y0=y0, y1=y1), state, dfx.RESULTS.successful


class SERController(dfx.AbstractStepSizeController):
    """Switched evolution relaxation: an accepted step grows the next by
    ‖f(y0)‖ / ‖f(y1)‖ clipped to [`min_growth`, `max_growth`] (the floor keeps a
    stagnating or slowly rising residual from freezing the step size); a step whose
    residual rose more than `reject_growth` times or is not finite is rejected and
    the step quartered; once the solver reports the steady
    state the next step goes to the end of the interval. Needs
    `y_error = (‖f(y0)‖, ‖f(y1)‖, steady)`, as `PseudoTransient` returns."""

    max_growth: float = 10.0
    min_growth: float = 1.2
    reject_growth: float = 2.0

    def wrap(self, direction):
        return self

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        if dt0 is None:
            raise ValueError("pseudo-transient continuation needs dt0, the first pseudo-time step")
        return t0 + dt0, None

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        before, after, steady = y_error
        steady = jnp.asarray(steady) != 0  # diffrax passes error leaves through jnp.where
        ok = jnp.isfinite(after) & (after <= self.reject_growth * before)
        ratio = before / jnp.where(after > 0, after, jnp.finfo(jnp.result_type(after)).tiny)
        factor = jnp.clip(ratio, self.min_growth, self.max_growth)
        dt = t1 - t0
        next_t0 = jnp.where(ok, t1, t0)
        next_dt = jnp.where(ok, dt * factor, 0.25 * dt)
        next_t1 = jnp.where(ok & steady, jnp.inf, next_t0 + next_dt)  # diffrax clips to t1
        return ok, next_t0, next_t1, False, state, dfx.RESULTS.successful
