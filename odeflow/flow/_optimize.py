"""`optimize`: the optax baseline with the same stopping rule and result type as
`gradient_flow`."""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PyTree

from .._cache import keyed
from .._checks import check_float_tree, check_positive_int
from ..solvers import SolverStats
from ._flow import split_params
from ._result import FAILED, HORIZON_REACHED, TARGET_REACHED, FlowResult, finite_initial_loss


def optimize(
    loss_fn: Callable[[PyTree], Float[Array, ""]],
    params: PyTree,
    optimizer: optax.GradientTransformation,
    *,
    target_loss: float | None = None,
    max_iters: int = 10_000,
    opt_state: PyTree | None = None,
    throw: bool = True,
) -> FlowResult:
    """Minimise `loss_fn` with an optax optimizer on the full batch.

    Each iteration evaluates the loss and its gradient at the current parameters,
    stops if the loss is below `target_loss` (the same rule as `gradient_flow`:
    the first iterate whose loss is below the target), else applies one update.
    Optimizers that take `value`, `grad` and `value_fn` (e.g. `optax.lbfgs` with its
    line search) or `grad_fn` (`odeflow.flow.runge_kutta`) get them, and their
    line-search or stage gradient evaluations are counted.

    **Arguments:**

    - `loss_fn`, `params`: as in `gradient_flow`.
    - `optimizer`: an optax `GradientTransformation`.
    - `target_loss`: stopping threshold, or `None` to run `max_iters` iterations.
    - `max_iters`: iteration cap.
    - `opt_state`: initial optimizer state (default `optimizer.init(params)`), e.g.
      with a learning rate set through `optax.inject_hyperparams`.
    - `throw`: raise if the loss at the initial parameters is NaN or inf; `False`
      returns a failed result instead.

    **Returns:** a `FlowResult` whose `t` is the number of updates applied and whose
    `stats.nfe` counts gradient evaluations.
    """
    check_positive_int(max_iters, "max_iters")
    check_float_tree(params, "params")
    trainable, _ = split_params(params)
    if opt_state is None:
        opt_state = optimizer.init(trainable)
    target = -jnp.inf if target_loss is None else jnp.asarray(target_loss)
    return _optimize(keyed(loss_fn), params, keyed(optimizer), opt_state, target, max_iters, throw)


def _linesearch_steps(opt_state):
    return optax.tree_utils.tree_get(opt_state, "num_linesearch_steps", default=None)


def _stage_evals(opt_state):
    """Gradient evaluations of the last update beyond the one at the iterate (the
    stages of `odeflow.flow.runge_kutta`)."""
    return optax.tree_utils.tree_get(opt_state, "num_grad_evals") - 1


@eqx.filter_jit
def _optimize(loss_fn, params, optimizer, opt_state, target, max_iters, throw):
    trainable, static = split_params(params)
    loss = lambda p: loss_fn(eqx.combine(p, static))
    optimizer = optax.with_extra_args_support(optimizer)
    uses_linesearch = _linesearch_steps(opt_state) is not None
    uses_stages = optax.tree_utils.tree_get(opt_state, "num_grad_evals", default=None) is not None
    if uses_linesearch:
        value_and_grad = optax.value_and_grad_from_state(loss)
    else:
        plain = jax.value_and_grad(loss)
        value_and_grad = lambda p, state: plain(p)
    

    def cond(carry):
        _, _, i, value, _, _, _ = carry
        return (i < max_iters) & ~(value < target) & jnp.isfinite(value)

    def body(carry):
        p, state, i, value, grad, history, nfe = carry
        # optax chains pass extra arguments on to every member, and some (the line
        # search) reject unknown ones: grad_fn goes only to Runge-Kutta steps
        extra = dict(grad_fn=jax.grad(loss)) if uses_stages else {}
        updates, state = optimizer.update(
            grad, state, p, value=value, grad=grad, value_fn=loss, **extra
        )
        p = optax.apply_updates(p, updates)
        # With a line search the value and gradient at the new point come from its
        # state (no new evaluation); its trial evaluations are counted instead.
        value, grad = value_and_grad(p, state=state)
        evals = _linesearch_steps(state) if uses_linesearch else 1
        if uses_stages:
            evals = evals + _stage_evals(state)
        history = history.at[i + 1].set(value)
        return p, state, i + 1, value, grad, history, nfe + evals

    value0, grad0 = value_and_grad(trainable, state=opt_state)
    value0 = finite_initial_loss(value0, value0, throw)
    history = jnp.full((max_iters + 1,), jnp.nan, value0.dtype).at[0].set(value0)
    init = (trainable, opt_state, 0, value0, grad0, history, 1)
    p, _, iters, value, _, history, nfe = jax.lax.while_loop(cond, body, init)
    status = jnp.where(value < target, TARGET_REACHED, HORIZON_REACHED)
    status = jnp.where(jnp.isfinite(value), status, FAILED).astype(jnp.int32)
    stats = SolverStats.make(
        nfe=nfe, num_steps=iters, num_accepted=iters, num_loss_evals=0
    )
    steps = jnp.arange(max_iters + 1, dtype=history.dtype)
    return FlowResult(
        params=eqx.combine(p, static),
        loss=value,
        t=jnp.asarray(iters, history.dtype),
        stats=stats,
        status=status,
        loss_history=history,
        history_t=jnp.where(jnp.isnan(history), jnp.nan, steps),
    )
