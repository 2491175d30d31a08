"""`odeflow.solve`: a thin layer over `diffrax.diffeqsolve` that also counts work."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, PyTree

from .._checks import (
    check_float_tree,
    check_interval,
    check_positive_int,
    check_step,
    check_tolerances,
    check_vector_field,
)
from ._auto import AutoSwitch
from ._counting import WorkCountingController, work_totals
from ._erk import ERK
from ._esdirk import ESDIRK
from ._linearize import LinearizedTerm
from ._pseudo_transient import PseudoTransient
from ._rosenbrock import ROS2
from ._registry import get_solver, is_adaptive
from ._stats import NOT_COUNTED, SolverStats


class Solution(eqx.Module):
    """Result of `odeflow.solve`.

    - `ts`, `ys`: save times and states (as `diffrax.Solution.ts`/`.ys`).
    - `stats`: `SolverStats` with exact work counts.
    - `result`: a `diffrax.RESULTS` code; `success` is `result == successful`.
    - `event_mask`: which event fired (as `diffrax.Solution.event_mask`), or `None`.
    """

    ts: Any
    ys: Any
    stats: SolverStats
    result: dfx.RESULTS
    event_mask: Any = None

    @property
    def success(self) -> Bool[Array, "..."]:
        return self.result == dfx.RESULTS.successful

    @property
    def status(self) -> str:
        """A readable status (unbatched solutions only)."""
        return "successful" if bool(self.success) else str(self.result)


def _controller(solver, rtol, atol, dt0, norm):
    if isinstance(solver, PseudoTransient):
        return solver.controller()
    if is_adaptive(solver):
        kwargs = {} if norm is None else {"norm": norm}
        return dfx.PIDController(rtol=rtol, atol=atol, **kwargs)
    if dt0 is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate, so it needs a fixed step: "
            "pass dt0 (e.g. dt0=0.01) or choose an adaptive solver such as 'tsit5'"
        )
    return dfx.ConstantStepSize()


def initial_step(vector_field, t0, y0, args, error_order, rtol, atol):
    """Initial step size by Hairer, Norsett & Wanner (1993), section II.4: two
    vector-field evaluations, at (t0, y0) and one explicit Euler step away."""
    y0_flat, unravel = ravel_pytree(y0)
    f = lambda t, y: ravel_pytree(vector_field(t, unravel(y), args))[0]
    scale = atol + rtol * jnp.abs(y0_flat)
    rms = lambda x: jnp.sqrt(jnp.mean((x / scale) ** 2))
    f0 = f(t0, y0_flat)
    d0, d1 = rms(y0_flat), rms(f0)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.maximum(d1, 1e-30))
    f1 = f(t0 + h0, y0_flat + h0 * f0)
    d2 = rms(f1 - f0) / h0
    h1 = jnp.where(
        jnp.maximum(d1, d2) <= 1e-15,
        jnp.maximum(1e-6, h0 * 1e-3),
        (0.01 / jnp.maximum(d1, d2)) ** (1.0 / error_order),
    )
    return jax.lax.stop_gradient(jnp.minimum(100 * h0, h1))


def _saveat(saveat: dfx.SaveAt | None, solver_state: bool) -> dfx.SaveAt:
    saveat = dfx.SaveAt(t1=True) if saveat is None else saveat
    return dfx.SaveAt(
        subs=saveat.subs, dense=saveat.dense, controller_state=True, solver_state=solver_state
    )


def solve(
    vector_field: Callable[[Any, PyTree, Any], PyTree],
    y0: PyTree,
    *,
    t0: float,
    t1: float,
    solver: str | dfx.AbstractSolver = "auto",
    rtol: float = 1e-6,
    atol: float = 1e-8,
    dt0: float | None = None,
    saveat: dfx.SaveAt | None = None,
    max_steps: int = 16**4,
    throw: bool = True,
    args: Any = None,
    event: dfx.Event | None = None,
    adjoint: dfx.AbstractAdjoint | None = None,
    norm: Callable | None = None,
    linearize: Callable | None = None,
    controller: dfx.AbstractStepSizeController | None = None,
) -> Solution:
    """Solve dy/dt = vector_field(t, y, args) from t0 to t1 and count the work.

    **Arguments:**

    - `vector_field`: `f(t, y, args)` returning a pytree shaped like `y`.
    - `y0`: initial state, any pytree of float arrays.
    - `t0`, `t1`: integration interval, `t1 > t0`.
    - `solver`: a diffrax solver or a registered name (`odeflow.solvers.solver_names()`);
      the default `"auto"` switches between Tsit5 and Kvaerno3 as stiffness demands.
    - `rtol`, `atol`: tolerances of the PID step-size controller (adaptive solvers).
    - `dt0`: initial step (adaptive solvers; `None` selects it, costing 2 evaluations)
      or the fixed step (solvers without an error estimate, e.g. `"euler"`).
    - `saveat`: a `diffrax.SaveAt`; default saves at `t1` only.
    - `max_steps`: cap on attempted steps.
    - `throw`: raise on failure; with `False` the partial solution and its stats come
      back with a failing `result`.
    - `args`, `event`, `adjoint`: passed to `diffrax.diffeqsolve`.
    - `norm`: error norm of the step-size controller (default RMS).
    - `linearize`: optional `linearize(t, y, args) -> (f(t, y, args), jvp)` with
      `jvp(v)` an exact or approximate Jacobian-vector product, used by the implicit
      and Rosenbrock solvers in place of automatic differentiation (e.g. a
      Gauss-Newton product for a gradient flow).
    - `controller`: a diffrax step-size controller for adaptive solvers in place of
      `diffrax.PIDController(rtol, atol, norm)` (odeflow's work counting wraps it).

    **Returns:** a `Solution` with `.ys`, `.ts`, `.stats` (`SolverStats`) and `.result`.
    """
    solver = get_solver(solver)
    check_tolerances(rtol, atol)
    check_interval(t0, t1)
    check_positive_int(max_steps, "max_steps")
    check_float_tree(y0, "y0")
    check_step(dt0)
    check_vector_field(vector_field, t0, y0, args)
    if controller is None or not is_adaptive(solver) or isinstance(solver, PseudoTransient):
        controller = _controller(solver, rtol, atol, dt0, norm)
    counted = isinstance(solver, (ERK, ESDIRK, ROS2, PseudoTransient, AutoSwitch))
    initial_evals = 0
    if counted:
        solver = dataclasses.replace(solver, report_work=True)
        if isinstance(solver, (ESDIRK, AutoSwitch)) and solver.newton_rtol is None:
            solver = dataclasses.replace(solver, newton_rtol=rtol, newton_atol=atol)
        if isinstance(solver, PseudoTransient) and solver.steady_rtol is None:
            solver = dataclasses.replace(solver, steady_rtol=rtol, steady_atol=atol)
        controller = WorkCountingController(controller)
        if dt0 is None and is_adaptive(solver):
            order = solver.error_order(None)
            dt0 = initial_step(vector_field, t0, y0, args, order, rtol, atol)
            initial_evals = 2
    sol = dfx.diffeqsolve(
        LinearizedTerm(vector_field, linearize),
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=args,
        saveat=_saveat(saveat, solver_state=isinstance(solver, AutoSwitch)),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=throw,
        event=event,
        adjoint=dfx.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
    )
    stats = _stats(sol, solver, counted, initial_evals)
    return Solution(sol.ts, sol.ys, stats, sol.result, sol.event_mask)


def _stats(sol: dfx.Solution, solver, counted: bool, initial_evals: int) -> SolverStats:
    steps = dict(
        num_steps=sol.stats["num_steps"],
        num_accepted=sol.stats["num_accepted_steps"],
        num_rejected=sol.stats["num_rejected_steps"],
    )
    if not counted:  # a diffrax solver instance: its inner work is not observable
        unknown = {k: NOT_COUNTED for k in SolverStats.__dataclass_fields__ if k not in steps}
        return SolverStats.make(**steps, **dict(unknown, num_loss_evals=0))
    work = work_totals(sol.controller_state)
    # f(t0, y0) from the solver's init: FSAL explicit methods and AutoSwitch
    first = isinstance(solver, AutoSwitch) or (isinstance(solver, ERK) and solver.tableau.fsal)
    work["nfe"] = work["nfe"] + int(first) + initial_evals
    if isinstance(solver, AutoSwitch):
        work["num_switches"] = sol.solver_state.switches
    return SolverStats.make(**steps, **work)
