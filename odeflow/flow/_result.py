"""`FlowResult`: what a training run returns, for ODE solvers and optax alike."""

from __future__ import annotations

import diffrax as dfx
import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from ..solvers import SolverStats

STATUSES = ("target_reached", "horizon_reached", "max_steps_reached", "failed")
"""Names of `FlowResult.status` codes, by index."""
TARGET_REACHED, HORIZON_REACHED, MAX_STEPS_REACHED, FAILED = range(4)


class FlowResult(eqx.Module):
    """Result of `gradient_flow` or `optimize` (batched under `vmap`).

    - `params`: final parameters (same structure as the initial ones).
    - `loss`: full-batch loss at `params`.
    - `t`: flow time reached (`gradient_flow`) or iterations done (`optimize`).
    - `stats`: `SolverStats`; `nfe` counts gradient evaluations (full-batch
      presentations), Hessian work is counted separately.
    - `status`: index into `odeflow.flow.STATUSES`.
    - `loss_history`: loss at the start and after each accepted step/iteration,
      padded with NaN; `history_t` the matching flow times (or iteration numbers).
    - `result`: the integrator's `diffrax.RESULTS` code (`gradient_flow`); always
      `successful` for `optimize` and `levenberg_marquardt`. `reason` says in words
      why a run stopped short of its target.
    """

    params: PyTree
    loss: Float[Array, ""]
    t: Float[Array, ""]
    stats: SolverStats
    status: Int[Array, ""]
    loss_history: Float[Array, " n"]
    history_t: Float[Array, " n"]
    result: dfx.RESULTS = eqx.field(default_factory=lambda: dfx.RESULTS.successful)

    @property
    def reached_target(self) -> Bool[Array, "..."]:
        return self.status == TARGET_REACHED

    @property
    def status_name(self) -> str:
        """Readable status of an unbatched result."""
        return STATUSES[int(self.status)]

    @property
    def reason(self) -> str:
        """Why an unbatched run stopped: empty when it reached its target."""
        status = int(self.status)
        if status == TARGET_REACHED:
            return ""
        if status == HORIZON_REACHED:
            return "stopped at the horizon (t1 or max_iters) above the target loss"
        if status == MAX_STEPS_REACHED:
            return "max_steps reached above the target loss; raise max_steps"
        if not bool(jnp.isfinite(self.loss)):
            return "the loss became NaN or inf (diverged); lower the learning rate or tolerance"
        return f"the integrator failed: {dfx.RESULTS[self.result]}"


def finite_initial_loss(value, carry, throw: bool = True):
    """`carry`, raising at run time if the loss at the initial parameters is NaN or
    inf (NaN or inf in the data, or a bad initialisation): no run could start. With
    `throw=False` the run returns a failed result instead, and the compiled program
    has no host callback (so JAX's persistent compilation cache can keep it)."""
    if not throw:
        return carry
    return eqx.error_if(carry, ~jnp.isfinite(value), "the loss at the initial parameters is NaN "
                        "or inf; check the data for NaN or inf entries and the initialisation")
