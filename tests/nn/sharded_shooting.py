"""Run by test_shooting.py in a fresh process with 4 simulated CPU devices (set
by the test: `processes.simulated_devices`): the multiple-shooting loss and its
gradient with the segments split over 4 devices and on 1; prints both as JSON."""

import json
import sys

import equinox as eqx
import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from odeflow.nn import MultipleShooting, ODEBlock, segments, shooting_loss  # noqa: E402

if __name__ == "__main__":
    assert len(jax.devices()) == 4
    ts = jnp.linspace(0.0, 5.0, 31)  # 6 segments: padded to 8 over 4 devices
    ys = jnp.stack([jnp.cos(ts), jnp.sin(ts)], axis=1)
    st, sy = segments(ts, ys, 6)
    mlp = eqx.nn.MLP(2, 2, 8, 1, activation=jnp.tanh, key=jax.random.key(0))
    model = MultipleShooting(ODEBlock(lambda t, y, args: mlp(y), rtol=1e-8, atol=1e-10), sy)
    out = {}
    for devices in (4, 1):
        loss_of_starts = lambda s: shooting_loss(eqx.tree_at(lambda m: m.starts, model, s), st, sy,
                                                 devices=devices)
        (loss, metrics), grad_starts = jax.value_and_grad(loss_of_starts, has_aux=True)(model.starts)
        out[devices] = {"loss": float(loss), "nfe": int(metrics["nfe"]),
                        "grad_starts": np.asarray(grad_starts).ravel().tolist()}
    json.dump(out, sys.stdout)
