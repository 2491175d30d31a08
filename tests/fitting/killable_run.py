"""A small training run that a test kills with SIGKILL and then resumes (run as a
script: `python killable_run.py CHECKPOINT_FOLDER`; imported by the test for the
uninterrupted and the resumed runs)."""

import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

from odeflow import nn  # noqa: E402
from odeflow import fitting as T  # noqa: E402

STEPS = 40


def run(checkpoint=None, steps=STEPS, **kwargs):
    x = jax.random.normal(jax.random.key(0), (48, 1, 6))
    y = (x[:, 0, 0] > 0).astype(jnp.int32) + (x[:, 0, 1] > 0).astype(jnp.int32)
    model = nn.ODENet((1, 6), 3, key=jax.random.key(1), width=6, hidden=8, rtol=1e-4, atol=1e-6)
    return T.fit(model, T.classification_loss(), {"x": x, "y": y}, optimizer=optax.adam(1e-2),
                   steps=steps, batch_size=16, key=jax.random.key(2), progress=False,
                   checkpoint=checkpoint, checkpoint_every=2, count_nfe=False, **kwargs)


if __name__ == "__main__":
    run(sys.argv[1])
