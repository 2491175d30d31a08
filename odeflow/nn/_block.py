"""ODE blocks: continuous-depth layers h(t1) = h(t0) + ∫ f(t, h, args) dt
(Chen et al. 2018), as equinox modules on diffrax."""

from __future__ import annotations

from typing import Any, Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from .._checks import check_interval, check_positive_int, check_step, check_tolerances, static_scalar
from ..solvers import SolverStats, get_solver, solve
from ..solvers._solve import check_adjoint
from ._gradients import adjoint_for, check_gradient, forward_sensitivities


BATCHING = ("joint", "per-sample", "vmap")


class ODEBlock(eqx.Module):
    """A layer that maps `h` to the solution at `t1` of dh/dt = f(t, h, args) from
    `h(t0) = h`.

    **Arguments:**

    - `vector_field`: `f(t, h, args)`, an equinox module (its arrays are the
      block's parameters) or a function; `t` lets the dynamics depend on depth. `h`
      may be any pytree of float arrays, e.g. a whole batch as one state.
    - `t0`, `t1`: the integration interval (`t1 < t0` integrates backwards).
    - `solver`: a registered name (`odeflow.solvers.solver_names()`) or a diffrax
      solver.
    - `rtol`, `atol`: step-size controller tolerances (adaptive solvers).
    - `dt0`: size of the first step (`None`: chosen automatically) or the fixed
      step of a solver without an error estimate; positive, taken in the direction
      of integration.
    - `adaptive`: `True` (default) adapts the step to `rtol`, `atol`; `False` takes
      constant steps of `dt0` with any solver (diffrax's `ConstantStepSize`; the
      last step is shortened to end on `t1`), as in diffrax's latent ODE and CNF
      examples.
    - `gradient`: `"checkpoint"`, `"backsolve"`, `"direct"` or `"forward"` (see
      `odeflow.nn.GRADIENTS`); `jax.grad` / `eqx.filter_grad` work with each.
    - `max_steps`: cap on attempted steps.
    - `batching`: how a batch (the leading axis of every leaf of `h`) is solved.
      `"joint"` (default) solves it as one state: one step-size sequence, chosen by
      the error of the whole batch; the field sees the whole batch. `"vmap"` solves
      each sample alone under `jax.vmap`, with its own steps, and hands the field
      one sample without the batch axis, as `jax.vmap` would (for a field written
      for one sample). `"per-sample"` also gives each sample its own steps but
      hands the field a batch of one (shape `(1, ...)`), for a field written for
      batches (the convolutional fields of `ODENet`). With either, the vectorised
      loop runs until the slowest sample is done, and `solve` returns per-sample
      `SolverStats`.

    Times, tolerances and `dt0` are fixed settings: Python numbers or concrete JAX
    or NumPy scalars, kept as Python floats.

    `block(h)` returns the state at `t1`; `block.solve(h)` also returns the forward
    pass's `SolverStats` (NFE, steps, rejections, Jacobian work).
    """

    vector_field: Callable
    t0: float = eqx.field(static=True, default=0.0, converter=static_scalar("t0"))
    t1: float = eqx.field(static=True, default=1.0, converter=static_scalar("t1"))
    solver: Any = eqx.field(static=True, default="tsit5")
    rtol: float = eqx.field(static=True, default=1e-3, converter=static_scalar("rtol"))
    atol: float = eqx.field(static=True, default=1e-6, converter=static_scalar("atol"))
    dt0: float | None = eqx.field(static=True, default=None,
                                  converter=static_scalar("dt0", optional=True))
    gradient: str = eqx.field(static=True, default="checkpoint")
    max_steps: int = eqx.field(static=True, default=4096)
    batching: str = eqx.field(static=True, default="joint")
    adaptive: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if self.batching not in BATCHING:
            raise ValueError(f"unknown batching {self.batching!r}; use one of {', '.join(BATCHING)}")
        check_gradient(self.gradient)
        check_interval(self.t0, self.t1)
        check_tolerances(self.rtol, self.atol)
        check_positive_int(self.max_steps, "max_steps")
        if not isinstance(self.adaptive, bool):
            raise TypeError(f"adaptive must be True or False, got {self.adaptive!r}")
        if not self.adaptive:
            if self.dt0 is None:
                raise ValueError("adaptive=False takes constant steps of dt0: pass the step, "
                                 "e.g. ODEBlock(f, adaptive=False, dt0=0.05)")
            check_step(self.dt0)  # positive; taken in the direction of integration
        check_adjoint(get_solver(self.solver), adjoint_for(self.gradient))

    def __call__(self, h: PyTree, args: Any = None) -> PyTree:
        return self.solve(h, args)[0]

    def solve(self, h: PyTree, args: Any = None) -> tuple[PyTree, SolverStats]:
        """`(h(t1), stats)` for the forward pass."""
        out, stats = self._run(h, args, None)
        return jax.tree.map(lambda y: y[-1], out), stats

    def trajectory(self, h: PyTree, ts: Array, args: Any = None) -> tuple[PyTree, SolverStats]:
        """`(states, stats)`: the solution from `h` at time `ts[0]` saved at every
        time in `ts` (strictly increasing or strictly decreasing; each leaf of
        `states` gets a leading time axis).
        The block's `t0`, `t1` are not used; solver, tolerances and gradient method are."""
        ts = jnp.asarray(ts)
        if ts.ndim != 1 or ts.shape[0] < 2:
            raise ValueError(f"ts must be a 1-D array of at least two increasing times, got shape {ts.shape}")
        return self._run(h, args, ts)

    def _run(self, h, args, ts):
        if self.batching == "per-sample":  # each sample a batch of one, under vmap
            one = lambda x: jax.tree.map(lambda y: y[None], x)
            run = lambda x: self._run_joint(one(x), args, ts)
            out, stats = jax.vmap(run)(h)
            # saved states (sample, time, 1, ...) -> (time, sample, ...), as joint
            return jax.tree.map(lambda y: jnp.moveaxis(jnp.squeeze(y, 2), 0, 1), out), stats
        if self.batching == "vmap":  # each sample alone, as jax.vmap hands it
            out, stats = jax.vmap(lambda x: self._run_joint(x, args, ts))(h)
            # saved states (sample, time, ...) -> (time, sample, ...), as joint
            return jax.tree.map(lambda y: jnp.moveaxis(y, 0, 1), out), stats
        return self._run_joint(h, args, ts)

    def _run_joint(self, h, args, ts):
        if self.gradient != "forward":
            return _solve(self.vector_field, h, args, self, ts)
        # forward sensitivities with respect to every float array that flows in
        dynamic, static = eqx.partition((self.vector_field, h, args, ts), eqx.is_inexact_array)

        def run(dyn):
            field, h0, a, times = eqx.combine(dyn, static)
            return _solve(field, h0, a, self, times)

        return forward_sensitivities(run, dynamic)


def _solve(vector_field, h, args, block: ODEBlock, ts):
    if ts is not None:
        ts = jax.lax.stop_gradient(ts)
        steps = jnp.diff(ts)
        ts = eqx.error_if(ts, ~(jnp.all(steps > 0) | jnp.all(steps < 0)),
                          "ts must be strictly increasing or strictly decreasing")
    t0, t1 = (block.t0, block.t1) if ts is None else (ts[0], ts[-1])
    sol = solve(
        vector_field,
        h,
        t0=t0,
        t1=t1,
        saveat=None if ts is None else dfx.SaveAt(ts=ts),
        solver=block.solver,
        rtol=block.rtol,
        atol=block.atol,
        dt0=None if block.dt0 is None else abs(block.dt0) * jnp.sign(t1 - t0),
        controller=None if block.adaptive else dfx.ConstantStepSize(),
        args=args,
        max_steps=block.max_steps,
        adjoint=adjoint_for(block.gradient, block.batching),
    )
    return sol.ys, sol.stats
