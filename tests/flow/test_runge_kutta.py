"""Runge-Kutta optax transformations: Euler is SGD, the others have their order on
the gradient flow, stage gradients are counted, minibatch loops work."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.linalg import expm

import odeflow
from odeflow.flow import runge_kutta

A = np.array([[3.0, 1.0], [1.0, 2.0]])
loss = lambda w: 0.5 * w @ jnp.asarray(A) @ w
W0 = jnp.array([1.0, -2.0])


def test_euler_is_sgd():
    rk = odeflow.optimize(loss, W0, runge_kutta(0.1, "euler"), max_iters=25)
    sgd = odeflow.optimize(loss, W0, optax.sgd(0.1), max_iters=25)
    np.testing.assert_array_equal(np.asarray(rk.params), np.asarray(sgd.params))


@pytest.mark.parametrize("method, order", [("euler", 1), ("heun", 2), ("midpoint", 2), ("rk4", 4)])
def test_order_on_the_gradient_flow(method, order):
    """Updates with step h to flow time 1: error against exp(-A) w0 falls as h^order."""
    exact = expm(-A) @ np.asarray(W0)
    errors, steps = [], [1 / 8, 1 / 16, 1 / 32]
    for h in steps:
        res = odeflow.optimize(loss, W0, runge_kutta(h, method), max_iters=int(round(1 / h)))
        errors.append(np.abs(np.asarray(res.params) - exact).max())
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.3), (errors, slope)


@pytest.mark.parametrize("method, stages", [("heun", 2), ("rk4", 4)])
def test_stage_gradients_are_counted(method, stages):
    res = odeflow.optimize(loss, W0, runge_kutta(0.05, method), max_iters=10)
    assert int(res.stats.nfe) == 1 + stages * 10


def test_minibatch_loop_and_schedule():
    """In a hand-written optax loop on minibatches, every stage uses the same batch."""
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 3)))
    w_true = jnp.array([1.0, -2.0, 0.5])
    y = x @ w_true
    batch_loss = lambda w, idx: 0.5 * jnp.mean((x[idx] @ w - y[idx]) ** 2)
    opt = runge_kutta(optax.exponential_decay(0.5, 50, 0.5), "heun")
    w = jnp.zeros(3)
    state = opt.init(w)

    @jax.jit
    def step(w, state, idx):
        grad_fn = jax.grad(lambda p: batch_loss(p, idx))
        updates, state = opt.update(grad_fn(w), state, w, grad_fn=grad_fn)
        return optax.apply_updates(w, updates), state

    for i in range(200):
        w, state = step(w, state, jnp.asarray(rng.choice(64, 16, replace=False)))
    np.testing.assert_allclose(np.asarray(w), np.asarray(w_true), atol=1e-3)
    assert int(state.count) == 200


def test_needs_grad_fn_and_known_method():
    with pytest.raises(ValueError, match="grad_fn"):
        opt = runge_kutta(0.1, "heun")
        opt.update(W0, opt.init(W0), W0)
    with pytest.raises(ValueError, match="unknown Runge-Kutta"):
        runge_kutta(0.1, "rk45")
