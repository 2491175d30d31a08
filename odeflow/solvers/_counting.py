"""A step-size controller wrapper that totals the work an odeflow solver's step reports.

diffrax discards the solver state of rejected steps, so work done on a rejected step
cannot be counted in the solver state. The controller state is not discarded: the
solver hands each step's counts to this wrapper beside its error estimate, and the
wrapper adds them up, accepted or rejected, before passing the plain error estimate
on to the wrapped controller. A solver that changes method between steps
(`AutoSwitch`) hands over the step's error order as a third element.
"""

from __future__ import annotations

import diffrax as dfx
import jax.numpy as jnp

from ._stats import WORK_FIELDS


class WorkCountingController(dfx.AbstractStepSizeController):
    """Wraps `inner`; its state is `(inner_state, totals)` with `totals` an int array
    ordered as `odeflow.solvers._stats.WORK_FIELDS`."""

    inner: dfx.AbstractStepSizeController

    def wrap(self, direction):
        return WorkCountingController(self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        tnext, inner_state = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return tnext, (inner_state, jnp.zeros(len(WORK_FIELDS), jnp.int32))

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        inner_state, totals = state
        if len(y_error) == 3:  # a switching solver names each step's error order
            y_error, work, error_order = y_error
        else:
            y_error, work = y_error
        out = self.inner.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner_state
        )
        keep, tprev, tnext, made_jump, inner_state, result = out
        totals = totals + work.astype(jnp.int32)
        return keep, tprev, tnext, made_jump, (inner_state, totals), result


def work_totals(controller_state) -> dict:
    """The totals of a final `WorkCountingController` state, by field name."""
    _, totals = controller_state
    return {name: totals[..., i] for i, name in enumerate(WORK_FIELDS)}
