"""Multiple shooting: segments, all-at-once solves, the loss at the truth, training,
segments split over devices."""

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from processes import run_json, simulated_devices

from odeflow.nn import MultipleShooting, ODEBlock, segments, shooting_loss

A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])
spiral = lambda t, y, args: (y**3) @ A  # torchdiffeq's ode_demo dynamics


def _data(t1=5.0, n=41):
    ts = jnp.linspace(0.0, t1, n)
    ys, _ = ODEBlock(spiral, rtol=1e-10, atol=1e-12).trajectory(jnp.array([2.0, 0.0]), ts)
    return ts, ys


def test_segments_share_their_endpoints():
    ts, ys = _data()
    st, sy = segments(ts, ys, 11)
    assert st.shape == (4, 11) and sy.shape == (4, 11, 2)
    np.testing.assert_array_equal(st[1:, 0], st[:-1, -1])
    np.testing.assert_array_equal(sy[2, 3], ys[23])
    with pytest.raises(ValueError, match="multiple of"):
        segments(ts, ys, 7)


def test_true_dynamics_fit_exactly_and_segments_equal_separate_solves():
    ts, ys = _data()
    st, sy = segments(ts, ys, 11)
    model = MultipleShooting(ODEBlock(spiral, rtol=1e-10, atol=1e-12), sy)
    loss, metrics = shooting_loss(model, st, sy)
    assert float(loss) < 1e-16 and float(metrics["continuity"]) < 1e-16
    predicted, nfe = model.predict(st)
    for k in range(4):
        alone, stats = model.block.trajectory(sy[k, 0], st[k])
        np.testing.assert_allclose(predicted[k], alone, rtol=1e-12)
        assert int(nfe[k]) == int(stats.nfe)


class Field(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, t, y, args):
        return self.mlp(y**3)


def test_training_closes_the_gaps_and_fits():
    ts, ys = _data()
    st, sy = segments(ts, ys, 11)
    field = Field(eqx.nn.MLP(2, 2, 16, 1, activation=jnp.tanh, key=jax.random.key(0)))
    model = MultipleShooting(ODEBlock(field, rtol=1e-6, atol=1e-8), sy + 0.05)  # noisy starts
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state):
        (loss, metrics), grads = eqx.filter_value_and_grad(
            lambda m: shooting_loss(m, st, sy, continuity=10.0), has_aux=True)(model)
        updates, state = opt.update(grads, state, model)
        return eqx.apply_updates(model, updates), state, loss, metrics

    first = None
    for _ in range(150):
        model, state, loss, metrics = step(model, state)
        first = first or (float(loss), float(metrics["continuity"]))
    assert float(loss) < first[0] / 10
    assert float(metrics["continuity"]) < first[1] / 10, (first, metrics)


def test_segments_split_over_four_devices_equal_one():
    script = Path(__file__).with_name("sharded_shooting.py")
    out = run_json(script, env=simulated_devices(4))
    assert out["4"]["nfe"] == out["1"]["nfe"] > 0
    np.testing.assert_allclose(out["4"]["loss"], out["1"]["loss"], rtol=1e-12)
    np.testing.assert_allclose(out["4"]["grad_starts"], out["1"]["grad_starts"], rtol=1e-10, atol=1e-14)
