"""Fixed-step Runge-Kutta on (stochastic) gradients as optax transformations.

Stochastic gradient descent is explicit Euler on the gradient flow with step =
learning rate; Heun's method, the midpoint rule and classic RK4 take the same step
with more gradient evaluations per update. In the minibatch regime each update
evaluates all its stage gradients on the same minibatch, so the update is a
Runge-Kutta step on that minibatch's loss.

The transformation needs the gradient at its stage points: pass `grad_fn` (the
gradient function of the current minibatch's loss) to `update`, as optax passes
`value_fn` to `optax.lbfgs`; `odeflow.optimize` does this itself.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

TABLEAUS = {
    "euler": (np.zeros((1, 1)), np.array([1.0])),
    "heun": (np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.5, 0.5])),
    "midpoint": (np.array([[0.0, 0.0], [0.5, 0.0]]), np.array([0.0, 1.0])),
    "rk4": (
        np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]]),
        np.array([1.0, 2.0, 2.0, 1.0]) / 6.0,
    ),
}
"""Explicit Runge-Kutta tableaus `(a, b)` by name."""


class RungeKuttaState(NamedTuple):
    """`count`: updates made (for learning-rate schedules); `num_grad_evals`:
    gradient evaluations of the last update, the incoming gradient included."""

    count: jax.Array
    num_grad_evals: jax.Array


def runge_kutta(
    learning_rate: float | Callable[[jax.Array], jax.Array], method: str = "heun"
) -> optax.GradientTransformationExtraArgs:
    """One explicit Runge-Kutta step of dθ/dt = -∇L(θ) per update, with step
    `learning_rate` (a float or an optax schedule).

    **Arguments:**

    - `learning_rate`: the step h.
    - `method`: `"euler"` (= `optax.sgd`), `"heun"`, `"midpoint"` or `"rk4"`.

    **Returns:** an optax `GradientTransformationExtraArgs`. `update(grads, state,
    params, *, grad_fn)` takes the gradient at `params` and `grad_fn(params)` for the
    other stages (same minibatch); `"euler"` needs no `grad_fn`.
    """
    if method not in TABLEAUS:
        raise ValueError(f"unknown Runge-Kutta method {method!r}; use one of {', '.join(TABLEAUS)}")
    a, b = TABLEAUS[method]
    stages = len(b)

    def init(params):
        del params
        return RungeKuttaState(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def update(updates, state, params=None, *, grad_fn=None, **extra):
        del extra
        if stages > 1 and (grad_fn is None or params is None):
            raise ValueError(
                f"runge_kutta(method={method!r}) evaluates gradients at its stages: call "
                "update(grads, state, params, grad_fn=...) with the minibatch's gradient "
                "function (odeflow.optimize passes it)"
            )
        h = learning_rate(state.count) if callable(learning_rate) else learning_rate
        ks = [updates]
        for i in range(1, stages):
            shift = _combine(a[i][:i], ks)
            point = jax.tree.map(lambda p, d: p - h * d, params, shift)
            ks.append(grad_fn(point))
        step = jax.tree.map(lambda d: -h * d, _combine(b, ks))
        return step, RungeKuttaState(state.count + 1, jnp.asarray(stages, jnp.int32))

    return optax.GradientTransformationExtraArgs(init, update)


def _combine(coeffs, ks):
    """sum_j coeffs[j] * ks[j] over the non-zero coefficients."""
    live = [(float(c), k) for c, k in zip(coeffs, ks) if c != 0]
    if not live:
        return jax.tree.map(jnp.zeros_like, ks[0])
    return jax.tree.map(lambda *xs: sum(c * x for (c, _), x in zip(live, xs)), *[k for _, k in live])
