import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import odeflow


def _hand_loop(loss, params, opt, target, max_iters):
    state = opt.init(params)
    for i in range(max_iters):
        value, grad = jax.value_and_grad(loss)(params)
        if value < target:
            return params, i, value
        updates, state = opt.update(grad, state, params)
        params = optax.apply_updates(params, updates)
    return params, max_iters, loss(params)


def test_optimize_equals_hand_written_optax_loop():
    task = odeflow.problems.get_task("xor")
    params = task.init(jax.random.key(3))
    opt = optax.adam(0.1)
    res = odeflow.optimize(task.loss, params, opt, target_loss=0.05, max_iters=500)
    ref, iters, value = _hand_loop(task.loss, params, opt, 0.05, 500)
    assert int(res.t) == iters
    for k in ref:
        np.testing.assert_allclose(res.params[k], ref[k], rtol=1e-9)
    assert float(res.loss) == pytest.approx(float(value), rel=1e-12)
    assert int(res.stats.nfe) == iters + 1


def test_lbfgs_counts_line_search():
    loss = lambda p: jnp.sum((p - 1.0) ** 4) + jnp.sum(p**2)
    res = odeflow.optimize(loss, jnp.zeros(3), optax.lbfgs(), target_loss=0.87, max_iters=50)
    assert res.status_name == "target_reached"
    assert int(res.stats.nfe) >= int(res.t) + 1


def test_history_and_no_target():
    loss = lambda p: jnp.sum(p**2)
    res = odeflow.optimize(loss, jnp.ones(2), optax.sgd(0.1), max_iters=7)
    assert int(res.t) == 7 and res.status_name == "horizon_reached"
    np.testing.assert_allclose(res.loss_history[:8], 2 * 0.8 ** (2 * np.arange(8)), rtol=1e-12)
