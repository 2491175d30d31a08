"""Step-size control measured on what matters for training.

The default controller bounds the local error of the parameters. Two alternatives:

- Error in output space: the local error δθ is mapped through the model's Jacobian,
  δg = J_g(θ) δθ (one JVP), and controlled relative to the outputs g(θ); or in
  loss space, δL = ∇L(θ)·δθ relative to L(θ). Parameters that do not change the
  outputs no longer limit the step.
- A descent check: the exact flow decreases the loss (dL/dt = -‖∇L‖²), so a step
  that increases it is rejected whatever its error estimate says. This keeps loose
  tolerances safe: without it an explicit method at rtol 1e-2 can wander uphill
  with every step accepted. The last accepted loss is carried in the controller
  state, so the check costs one loss evaluation per step.
- A tolerance schedule: loose early, tight near convergence. The tolerances move
  log-linearly in the loss from `rtol` at the initial loss to `rtol_final` at the
  target loss (the error estimate is scaled, which is the same as scaling both
  `rtol` and `atol`).
"""

from __future__ import annotations

import abc
from typing import Callable

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .._options import as_option



class AbstractErrorSpace(eqx.Module):
    """Where adaptive gradient-flow steps measure their local error."""

    def check(self, loss_fn) -> None:
        """Raise, naming the fix, if `loss_fn` cannot provide this space."""

    @abc.abstractmethod
    def space(self, loss_fn, loss, static) -> Callable | None:
        """`params -> the quantity the error is measured on` (`None`: the
        parameters themselves), for `loss = lambda p: loss_fn(eqx.combine(p, static))`."""


class ParameterSpace(AbstractErrorSpace):
    """The local error of the parameters (the default)."""

    def space(self, loss_fn, loss, static):
        return None


class OutputSpace(AbstractErrorSpace):
    """The local error mapped to the model outputs on the training set (one JVP per
    step); needs a `CompositeLoss`."""

    def check(self, loss_fn) -> None:
        from ._curvature import CompositeLoss

        if not isinstance(loss_fn, CompositeLoss):
            raise TypeError(
                "error_space='outputs' needs the model outputs: pass "
                "odeflow.flow.CompositeLoss(predict, output_loss) (tasks provide "
                "task.composite_loss)"
            )

    def space(self, loss_fn, loss, static):
        return lambda p: loss_fn.predict(eqx.combine(p, static))


class LossSpace(AbstractErrorSpace):
    """The local error mapped to the loss, through its gradient."""

    def space(self, loss_fn, loss, static):
        return loss


ERROR_SPACES = {"params": ParameterSpace, "outputs": OutputSpace, "loss": LossSpace}
"""Error spaces by name (the shorthand `gradient_flow` accepts)."""


def as_error_space(error_space) -> AbstractErrorSpace:
    """An error space from an instance or a name in `ERROR_SPACES`."""
    return as_option(error_space, AbstractErrorSpace, ERROR_SPACES, "error_space",
                     "odeflow.flow.ParameterSpace(), OutputSpace() or LossSpace()")


class FlowErrorController(dfx.AbstractStepSizeController):
    """Wraps `inner` (a `diffrax.PIDController`), which then sees
    `(space(y0), space(y1), J_space(y1) · error)` instead of the parameters, with
    the error scaled by the tolerance schedule.

    - `space`: `params -> pytree` (`None`: the parameters themselves).
    - `loss`: `params -> scalar`, for the schedule.
    - `schedule`: `None` or `(log_loss0, log_target, log_ratio)` with `log_ratio =
      log(rtol / rtol_final)`.
    - `descent`: reject steps that increase the loss.
    """

    inner: dfx.AbstractStepSizeController
    space: Callable | None = None
    loss: Callable | None = None
    schedule: tuple | None = None
    descent: bool = False

    def wrap(self, direction):
        return FlowErrorController(self.inner.wrap(direction), self.space, self.loss,
                                   self.schedule, self.descent)

    def evaluations_per_step(self) -> int:
        """Forward evaluations of the loss or model per step (for the stats)."""
        space = 0 if self.space is None else 2  # space(y0) and a JVP at y1
        return space + int(self.schedule is not None or self.descent)  # L(y1)

    def evaluations_at_init(self) -> int:
        """Forward evaluations before the first step: L(y0) for the descent check."""
        return int(self.descent)

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        t1, inner = self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)
        accepted_loss = self.loss(y0) if self.descent else None
        return t1, (inner, accepted_loss)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order, state):
        state, accepted_loss = state
        failed = ~jnp.all(jnp.isfinite(ravel_pytree(y_error)[0]))
        if self.space is None:
            z0, z1, dz = y0, y1_candidate, y_error
        else:
            z0 = self.space(y0)
            z1, dz = jax.jvp(self.space, (y1_candidate,), (y_error,))
        if self.schedule is not None or self.descent:
            loss1 = self.loss(y1_candidate)
        factor = 1.0
        if self.schedule is not None:
            log_loss0, log_target, log_ratio = self.schedule
            log_loss = jnp.log(jnp.maximum(loss1, 1e-300))
            progress = jnp.clip((log_loss0 - log_loss) / (log_loss0 - log_target), 0.0, 1.0)
            factor = jnp.exp(progress * log_ratio)
        if self.descent:
            failed = failed | ~(loss1 <= accepted_loss)  # accepted_loss = L(y0)
        # a failed step's error is infinite (also where a JVP would make 0 * inf NaN)
        dz = jax.tree.map(lambda e: jnp.where(failed, jnp.inf, e * factor).astype(e.dtype), dz)
        keep, next_t0, next_t1, jump, state, result = self.inner.adapt_step_size(
            t0, t1, z0, z1, args, dz, error_order, state
        )
        if self.descent:
            accepted_loss = jnp.where(keep, loss1, accepted_loss)
        return keep, next_t0, next_t1, jump, (state, accepted_loss), result


def check_error_control(error_space, rtol, rtol_final, target_loss, loss_fn) -> AbstractErrorSpace:
    """The error space object, checked with the tolerance schedule against `loss_fn`."""
    error_space = as_error_space(error_space)
    error_space.check(loss_fn)
    if rtol_final is not None:
        if target_loss is None:
            raise ValueError(
                "rtol_final needs target_loss: the schedule runs from the initial loss "
                "to the target; pass target_loss=..."
            )
        if not (isinstance(rtol_final, jax.core.Tracer) or rtol_final > 0):
            raise ValueError(f"rtol_final must be positive, got {rtol_final}")
    return error_space
