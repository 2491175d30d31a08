"""`odeflow.solve`: a thin layer over `diffrax.diffeqsolve` that also counts work.

Everything solver-specific comes from the solver (`AbstractCountedSolver`): its
default step-size controller, the adjoints it supports, statistics from its final
state. Counting changes no step: the solver hands the controller a `StepReport`
and a counting wrapper passes the controller the error it would have seen anyway.
"""

from __future__ import annotations

from typing import Any, Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, PyTree

from .._cache import keyed
from .._checks import (
    check_float_tree,
    check_interval,
    check_positive_int,
    check_step,
    check_tolerances,
    check_vector_field,
)
from ._counting import count_work, work_totals
from ._linearize import LinearizedTerm
from ._newton import FROM_CONTROLLER
from ._protocol import AbstractCountedSolver, Work
from ._registry import get_solver, is_adaptive
from ._stats import NOT_COUNTED, Result, SolverStats


class Solution(eqx.Module):
    """Result of `odeflow.solve`.

    - `ts`, `ys`: save times and states (as `diffrax.Solution.ts`/`.ys`).
    - `stats`: `SolverStats` with exact work counts.
    - `result`: the outcome, a `diffrax.RESULTS` code that prints in words;
      `success` is `result == diffrax.RESULTS.successful`, `status` its words.
    - `event_mask`: which event fired (as `diffrax.Solution.event_mask`), or `None`.
    - `interpolation`: with `SaveAt(dense=True)`, the dense output over the whole
      interval (`evaluate(t)`), else `None`.
    - `controller_state`: with `SaveAt(controller_state=True)`, the final state of
      the step-size controller (the one given to `solve`, or the solver's default),
      else `None`.
    """

    ts: Any
    ys: Any
    stats: SolverStats
    result: Result
    event_mask: Any = None
    interpolation: dfx.DenseInterpolation | None = None
    controller_state: Any = None

    @property
    def success(self) -> Bool[Array, "..."]:
        return self.result == dfx.RESULTS.successful

    @property
    def status(self) -> str:
        """The outcome in words (`successful`, `max_steps_reached: ...`; for a batch,
        one per sample)."""
        return str(self.result)

    def evaluate(self, t0, t1=None) -> PyTree:
        """The dense solution at `t0` (or its increment from `t0` to `t1`); needs
        `saveat=diffrax.SaveAt(dense=True)`."""
        if self.interpolation is None:
            raise ValueError("evaluate needs the dense output: solve with saveat=diffrax.SaveAt(dense=True)")
        return self.interpolation.evaluate(t0, t1)


def initial_step(vector_field, t0, t1, y0, args, error_order, rtol, atol, norm=None):
    """First step size by Hairer, Nørsett & Wanner (1993), section II.4: two
    vector-field evaluations, at (t0, y0) and one explicit Euler step away, measured
    in the controller's norm. Signed like `t1 - t0`."""
    norm = optx.rms_norm if norm is None else norm
    direction = jnp.sign(jnp.asarray(t1 - t0, jnp.result_type(*jax.tree.leaves(y0))))
    scale = jax.tree.map(lambda y: atol + rtol * jnp.abs(y), y0)
    scaled = lambda tree: norm(jax.tree.map(lambda x, s: x / s, tree, scale))
    f0 = vector_field(t0, y0, args)
    d0, d1 = scaled(y0), scaled(f0)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = jnp.where(small, 1e-6, 0.01 * d0 / jnp.where(small, 1.0, d1))
    f1 = vector_field(t0 + direction * h0, jax.tree.map(lambda y, f: y + direction * h0 * f, y0, f0), args)
    d2 = scaled(jax.tree.map(lambda a, b: a - b, f1, f0)) / h0
    largest = jnp.maximum(d1, d2)
    h1 = jnp.where(largest <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / jnp.where(largest <= 1e-15, 1.0, largest)) ** (1.0 / error_order))
    return jax.lax.stop_gradient(direction * jnp.minimum(100 * h0, h1))


def pseudo_time_step(vector_field, t0, t1, y0, args, linearize=None):
    """First step of pseudo-transient continuation: 1/κ, with κ = |fᵀJf| / fᵀf the
    curvature of the field f along itself at (t0, y0) (one evaluation and one
    Jacobian-vector product, through `linearize` where given): the step at which
    h J stops being small along the first step's direction, so the first step is
    neither a negligible explicit Euler step nor a full Newton step. For a gradient
    flow it is the inverse Rayleigh quotient of the Hessian (or Gauss-Newton matrix)
    along the gradient. 1 where that curvature is zero or not finite. Signed like
    `t1 - t0`."""
    y_flat, unravel = ravel_pytree(y0)
    flat = lambda tree: ravel_pytree(tree)[0]
    if linearize is None:
        f, jvp = jax.linearize(lambda y: flat(vector_field(t0, unravel(y), args)), y_flat)
    else:
        f_tree, jvp_tree = linearize(t0, y0, args)
        f, jvp = flat(f_tree), lambda v: flat(jvp_tree(unravel(v)))
    ff = f @ f
    kappa = jnp.abs(f @ jvp(f)) / jnp.where(ff > 0, ff, 1.0)
    ok = jnp.isfinite(kappa) & (kappa > 0)
    step = jnp.where(ok, 1.0 / jnp.where(ok, kappa, 1.0), 1.0)
    direction = jnp.sign(jnp.asarray(t1 - t0, y_flat.dtype))
    return jax.lax.stop_gradient(direction * step)


def _with_newton_tolerances(solver, rtol, atol, norm):
    """An implicit solver whose Newton tolerances wait for the controller's gets
    `rtol`, `atol` and `norm` (diffrax does this itself for adaptive controllers)."""
    if not isinstance(solver, dfx.AbstractImplicitSolver):
        return solver
    given = {"rtol": rtol, "atol": atol, "norm": optx.rms_norm if norm is None else norm}
    waiting = [k for k in given if getattr(solver.root_finder, k) is FROM_CONTROLLER]
    return eqx.tree_at(lambda s: [getattr(s.root_finder, k) for k in waiting], solver,
                       [given[k] for k in waiting])


def _save_times(saveat: dfx.SaveAt | None):
    """The save times of a `SaveAt(ts=...)`, else `None`."""
    subs = None if saveat is None else saveat.subs
    return subs.ts if isinstance(subs, dfx.SubSaveAt) else None


def default_controller(solver, rtol, atol, norm, dt0, saveat=None):
    """The step-size controller of `solve` when none is given."""
    if isinstance(solver, AbstractCountedSolver):
        controller = solver.default_controller(rtol, atol, norm, _save_times(saveat))
    elif is_adaptive(solver):
        controller = dfx.PIDController(rtol=rtol, atol=atol, **({} if norm is None else {"norm": norm}))
    else:
        controller = dfx.ConstantStepSize()
    if isinstance(controller, dfx.ConstantStepSize) and dt0 is None:
        raise ValueError(
            f"{type(solver).__name__} has no error estimate, so it needs a fixed step: "
            "pass dt0 (e.g. dt0=0.01) or choose an adaptive solver such as 'tsit5'"
        )
    return controller


def check_adjoint(solver, adjoint) -> None:
    """Raise, naming what works, if `solver` cannot run under `adjoint`."""
    problem = solver.adjoint_problem(adjoint) if isinstance(solver, AbstractCountedSolver) else None
    if problem is not None:
        raise ValueError(f"{type(adjoint).__name__} does not work with {type(solver).__name__}: {problem}")


FORWARD_MODE_FIX = (
    "forward-mode differentiation (jax.jvp, jax.jacfwd) cannot go through a "
    "reverse-mode adjoint (diffrax.RecursiveCheckpointAdjoint, the default of solve, or "
    "odeflow.solvers.StepCheckpointAdjoint, an ODEBlock's gradient='checkpoint'): solve "
    "with adjoint=diffrax.ForwardMode() (or diffrax.DirectAdjoint(), which also supports "
    "reverse mode; gradient='forward' or 'direct' in an ODEBlock)"
)


def diffeqsolve(*args, **kwargs) -> dfx.Solution:
    """`diffrax.diffeqsolve`, with JAX's error for forward-mode differentiation
    through a reverse-mode adjoint replaced by one that names the fix."""
    try:
        return dfx.diffeqsolve(*args, **kwargs)
    except TypeError as err:
        if "forward-mode autodiff (jvp) to a custom_vjp" in str(err):
            raise TypeError(FORWARD_MODE_FIX) from err
        raise


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
    - `t0`, `t1`: integration interval; `t1 < t0` integrates backwards in time.
    - `solver`: a diffrax solver or a registered name (`odeflow.solvers.solver_names()`);
      the default `"auto"` switches between Tsit5 and Kvaerno3 as stiffness demands.
    - `rtol`, `atol`: tolerances of the step-size controller (and of the Newton
      iterations of implicit solvers).
    - `dt0`: initial step, signed like `t1 - t0` (adaptive solvers; `None` selects
      it, costing 2 evaluations; pseudo-transient continuation's from the curvature
      along the field, `pseudo_time_step`, one evaluation and one Jacobian-vector
      product) or the fixed step (solvers without an error estimate, e.g. `"euler"`).
    - `saveat`: a `diffrax.SaveAt`; default saves at `t1` only. `SaveAt(dense=True)`
      keeps the dense output (`Solution.evaluate`).
    - `max_steps`: cap on attempted steps.
    - `throw`: raise on failure; with `False` the partial solution and its stats come
      back with a failing `result`.
    - `args`, `event`: passed to `diffrax.diffeqsolve`.
    - `adjoint`: a diffrax adjoint (default `diffrax.RecursiveCheckpointAdjoint()`,
      reverse mode; `diffrax.ForwardMode()` for `jax.jvp`/`jax.jacfwd`;
      `odeflow.solvers.StepCheckpointAdjoint()` for a faster reverse pass through
      a solve of few steps, as in a neural ODE's block).
    - `norm`: error norm of the step-size controller (default RMS).
    - `linearize`: optional `linearize(t, y, args) -> (f(t, y, args), jvp)` with
      `jvp(v)` an exact or approximate Jacobian-vector product, used by the implicit
      and Rosenbrock solvers in place of automatic differentiation (e.g. a
      Gauss-Newton product for a gradient flow).
    - `controller`: a diffrax step-size controller in place of the solver's default
      (`diffrax.PIDController(rtol, atol, norm)` for most, with `step_ts` at the save
      times for `"kvaerno5"`, whose dense output is of order 4; odeflow's work
      counting wraps it).

    **Returns:** a `Solution` with `.ys`, `.ts`, `.stats` (`SolverStats`) and `.result`.

    Under `jax.grad` every solver differentiates (implicit stages by the implicit
    function theorem, Krylov solves as exact solves); the steps are the same with
    and without counting, and the same as `diffrax.diffeqsolve` with the same
    solver, controller and `dt0`.
    """
    solver = get_solver(solver)
    check_tolerances(rtol, atol)
    check_interval(t0, t1)
    check_positive_int(max_steps, "max_steps")
    check_float_tree(y0, "y0")
    check_step(dt0, t0, t1)
    check_vector_field(vector_field, t0, y0, args)
    adjoint = dfx.RecursiveCheckpointAdjoint() if adjoint is None else adjoint
    check_adjoint(solver, adjoint)
    controller = default_controller(solver, rtol, atol, norm, dt0, saveat) if controller is None else controller
    counted = isinstance(solver, AbstractCountedSolver)
    initial = Work.of()
    if not isinstance(controller, dfx.AbstractAdaptiveStepSizeController):
        solver = _with_newton_tolerances(solver, rtol, atol, norm)
    computed = dt0 is None and not isinstance(controller, dfx.ConstantStepSize)
    if computed and counted and solver.pseudo_time:
        dt0 = pseudo_time_step(vector_field, t0, t1, y0, args, linearize)
        initial = Work.of(nfe=1, num_jvps=1)
    elif computed:
        dt0 = initial_step(vector_field, t0, t1, y0, args, solver.error_order(None), rtol, atol, norm)
        initial = Work.of(nfe=2)
    first_step = None
    if counted and not isinstance(controller, (dfx.ConstantStepSize, dfx.StepTo)) and (
            computed or (not throw and isinstance(dt0, jax.core.Tracer))):
        # the first step handed to the controller, so that diffrax does not check a
        # traced dt0 at run time: a computed one is right by construction, and with
        # throw=False no run-time error is wanted; the program keeps no host callback.
        # Times keep the dtype diffrax would have given them with this dt0.
        time_dtype = jnp.result_type(t0, t1, dt0)
        t0, t1 = jnp.asarray(t0, time_dtype), jnp.asarray(t1, time_dtype)
        dt0, first_step = None, dt0
    if counted:
        solver, controller = solver.reporting(), count_work(controller, first_step)
    saveat = dfx.SaveAt(t1=True) if saveat is None else saveat
    sol = diffeqsolve(
        LinearizedTerm(keyed(vector_field), keyed(linearize)),
        solver,
        t0,
        t1,
        dt0,
        y0,
        args=args,
        saveat=dfx.SaveAt(subs=saveat.subs, dense=saveat.dense,
                          controller_state=counted or saveat.controller_state, solver_state=counted),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=throw,
        event=event,
        adjoint=adjoint,
    )
    stats = _stats(sol, solver, initial if counted else None)
    controller_state = None
    if saveat.controller_state:  # the given controller's, inside the counting wrapper's
        controller_state = sol.controller_state[0] if counted else sol.controller_state
    return Solution(sol.ts, sol.ys, stats, Result.of(sol.result), sol.event_mask,
                    sol.interpolation, controller_state)


def _stats(sol: dfx.Solution, solver, initial: Work | None) -> SolverStats:
    steps = dict(
        num_steps=sol.stats["num_steps"],
        num_accepted=sol.stats["num_accepted_steps"],
        num_rejected=sol.stats["num_rejected_steps"],
    )
    if initial is None:  # a diffrax solver instance: its inner work is not observable
        unknown = {k: NOT_COUNTED for k in SolverStats.__dataclass_fields__ if k not in steps}
        return SolverStats.make(**steps, **dict(unknown, num_loss_evals=0))
    work = work_totals(sol.controller_state) + initial
    return SolverStats.make(**steps, **work.as_dict(), **solver.final_stats(sol.solver_state))
