"""The loss along a gradient flow, followed by the step-size controller.

A gradient flow stops at the first accepted step whose loss is below the target and
records the loss after every accepted step. Both need the loss at the accepted
state. A `diffrax.Event` or a `SaveAt(fn=...)` evaluates it at the state diffrax
keeps after each step, a choice between the new and the old one, which a step has
not evaluated: one more forward pass per step (a fifth of a quasi-Newton
step on a 100,000-parameter MLP). The controller instead sees the candidate state, at
which the step has just evaluated the gradient, and a loss evaluated there shares
the gradient's forward pass once compiled (as the descent check's does). So the
controller wrapper here evaluates the loss at the candidate, keeps it if the step
is, records it, and ends the solve with `diffrax.RESULTS.event_occurred` once it is
below the target.
"""

from typing import Any, Callable

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
from equinox import AbstractVar
from jaxtyping import Array, Float, Int

from ..solvers._counting import AdaptiveWrapper


class LossRecord(eqx.Module):
    """The loss at the accepted state (`value`) and, in `slots` slots, the loss and
    flow time at the start and after each accepted step (`losses`, `times`; NaN in
    unused slots; a run with more accepted steps than slots keeps writing the last)."""

    value: Float[Array, ""]
    losses: Float[Array, " slots"]
    times: Float[Array, " slots"]
    count: Int[Array, ""]

    @classmethod
    def start(cls, value, t0, slots: int) -> "LossRecord":
        def first(x):
            return jnp.full((slots,), jnp.nan, jnp.result_type(x)).at[:1].set(x)

        return cls(value, first(value), first(t0), jnp.ones((), jnp.int32))

    def accept(self, keep, value, t) -> "LossRecord":
        """The record after a step to time `t` with loss `value`, kept if `keep`."""
        slot = jnp.minimum(self.count, self.losses.shape[0] - 1)

        def put(buffer, new):
            if buffer.shape[0] == 0:
                return buffer
            return buffer.at[slot].set(jnp.where(keep, jnp.asarray(new, buffer.dtype), buffer[slot]))

        return LossRecord(
            jnp.where(keep, value, self.value).astype(self.value.dtype),
            put(self.losses, value),
            put(self.times, t),
            self.count + jnp.asarray(keep, jnp.int32),
        )


class _AbstractLossTracking(dfx.AbstractStepSizeController):
    """Wraps `controller`; its state is `(controller's state, LossRecord)`.

    - `loss`: `state -> scalar`.
    - `target`: end the solve (`RESULTS.event_occurred`) after the first accepted
      step whose loss is below it; `None`: never.
    - `slots`: size of the loss history (0: none).
    """

    controller: AbstractVar[dfx.AbstractStepSizeController]
    loss: AbstractVar[Callable]
    target: AbstractVar[Any]
    slots: AbstractVar[int]

    @property
    def reads_reports(self) -> bool:
        """Whether the wrapped controller reads odeflow's step reports (counting passes
        them on)."""
        return getattr(self.controller, "reads_reports", False)

    def wrap(self, direction):
        return type(self)(self.controller.wrap(direction), self.loss, self.target, self.slots)

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        tnext, state = self.controller.init(terms, t0, t1, y0, dt0, args, func, error_order)
        return tnext, (state, LossRecord.start(self.loss(y0), t0, self.slots))

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        inner_state, record = state
        keep, tprev, tnext, made_jump, inner_state, result = self.controller.adapt_step_size(
            t0, t1, y0, y1_candidate, args, y_error, error_order, inner_state
        )
        value = self.loss(y1_candidate)
        keep = jnp.asarray(keep)
        record = record.accept(keep, value, t1)
        if self.target is not None:
            reached = keep & (value < self.target) & (result == dfx.RESULTS.successful)
            result = dfx.RESULTS.where(reached, dfx.RESULTS.event_occurred, result)
        return keep, tprev, tnext, made_jump, (inner_state, record), result


class LossTracking(_AbstractLossTracking):
    """Follows the loss around a non-adaptive controller (constant steps)."""

    controller: dfx.AbstractStepSizeController
    loss: Callable
    target: Any = None
    slots: int = eqx.field(static=True, default=0)


class AdaptiveLossTracking(_AbstractLossTracking, AdaptiveWrapper):
    """Follows the loss around an adaptive controller (exposing its tolerances)."""

    controller: dfx.AbstractAdaptiveStepSizeController
    loss: Callable
    target: Any = None
    slots: int = eqx.field(static=True, default=0)


def track_loss(controller, loss, target=None, slots: int = 0) -> _AbstractLossTracking:
    """`controller` wrapped to follow `loss` (see `LossTracking`); its final state's
    second element is the `LossRecord`."""
    if isinstance(controller, dfx.AbstractAdaptiveStepSizeController):
        return AdaptiveLossTracking(controller, loss, target, slots)
    return LossTracking(controller, loss, target, slots)
