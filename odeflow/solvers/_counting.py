"""Counting the work of a solve: a step-size controller wrapper that totals the work
each attempt reports (see `_protocol.py`) and hands the wrapped controller exactly
what the solver would have handed it without reports."""

from typing import Any

import diffrax as dfx
import jax.numpy as jnp
from equinox import AbstractVar

from ._protocol import StepReport, Work


class AdaptiveWrapper(dfx.AbstractAdaptiveStepSizeController):
    """A wrapper around an adaptive `controller` that exposes its tolerances, which
    diffrax hands to implicit solvers that take theirs from the controller."""

    controller: AbstractVar[dfx.AbstractAdaptiveStepSizeController]

    @property
    def rtol(self):
        return self.controller.rtol

    @property
    def atol(self):
        return self.controller.atol

    @property
    def norm(self):
        return self.controller.norm


class _AbstractCounting(dfx.AbstractStepSizeController):
    """Wraps `controller`; its state is `(controller's state, total Work)`. A
    `first_step` is the size of the step to start from when the solve gets
    `dt0=None` (taken in the direction of integration)."""

    controller: AbstractVar[dfx.AbstractStepSizeController]
    first_step: AbstractVar[Any]

    def wrap(self, direction):
        # diffrax integrates in increasing (direction-scaled) time once wrapped, so
        # the step is its magnitude: also right for an adjoint solve running back
        first = None if self.first_step is None else jnp.abs(self.first_step)
        return type(self)(self.controller.wrap(direction), first)

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        if dt0 is None and self.first_step is not None:
            dt0 = jnp.asarray(self.first_step, jnp.result_type(t0))  # time's dtype, as diffrax casts dt0
        tnext, state = self.controller.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return tnext, (state, Work.of())

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        if not isinstance(y_error, StepReport):
            raise TypeError(
                "odeflow's work counting needs a solver that reports its work: pass "
                "`solver.reporting()` (an odeflow solver) to diffrax.diffeqsolve, or use "
                "odeflow.solve, which does this"
            )
        inner_state, totals = state
        passed = y_error if getattr(self.controller, "reads_reports", False) else y_error.error
        keep, tprev, tnext, made_jump, inner_state, result = self.controller.adapt_step_size(
            t0, t1, y0, y1_candidate, args, passed, error_order, inner_state
        )
        return keep, tprev, tnext, made_jump, (inner_state, totals + y_error.work.as_counts()), result


class CountingController(_AbstractCounting):
    """Counts the work of a solve with a non-adaptive controller (e.g. constant steps)."""

    controller: dfx.AbstractStepSizeController
    first_step: Any = None


class AdaptiveCountingController(_AbstractCounting, AdaptiveWrapper):
    """Counts the work of a solve with an adaptive controller (exposing its
    tolerances)."""

    controller: dfx.AbstractAdaptiveStepSizeController
    first_step: Any = None


def count_work(controller: dfx.AbstractStepSizeController, first_step=None) -> _AbstractCounting:
    """`controller` wrapped to total the work of a solve. Use with a solver made by
    `solver.reporting()`; after `diffrax.diffeqsolve(..., saveat=SaveAt(...,
    controller_state=True))`, `work_totals(sol.controller_state)` gives the totals.
    `odeflow.solve` does all of this itself.

    `first_step`: the size of a first step (taken in the direction of integration)
    used when `diffeqsolve` gets `dt0=None`. `odeflow.solve` hands its computed first step over this way: the
    steps are those of `dt0=first_step`, without the run-time check diffrax makes of
    a computed `dt0` (a host callback, which would keep the compiled solve out of
    JAX's persistent compilation cache)."""
    if isinstance(controller, dfx.AbstractAdaptiveStepSizeController):
        return AdaptiveCountingController(controller, first_step)
    return CountingController(controller, first_step)


def work_totals(controller_state) -> Work:
    """The total `Work` in a final counting-controller state."""
    return controller_state[1]

