"""`train.sweep`: every seed's run at once equals that seed's own `train`."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from odeflow import nn
from odeflow import fitting as T


def _data(n=48):
    x = jax.random.normal(jax.random.key(0), (n, 1, 6))
    y = (x[:, 0, 0] > 0).astype(jnp.int32) + (x[:, 0, 1] > 0).astype(jnp.int32)
    return {"x": x, "y": y}


def make_model(key):
    return nn.ODENet((1, 6), 3, key=key, width=6, hidden=8, rtol=1e-4, atol=1e-6)


def test_sweep_equals_each_seeds_own_training():
    d = _data()
    common = dict(optimizer=optax.adam(1e-2), steps=6, batch_size=16)
    result = T.sweep(make_model, T.classification_loss(), d, seeds=[3, 5], devices=1, **common)
    assert result.losses.shape == (2, 6) and result.devices == 1
    for i, seed in enumerate([3, 5]):
        alone = T.fit(make_model(jax.random.key(seed)), T.classification_loss(), d,
                        key=jax.random.key(seed), count_nfe=False, progress=False,
                        steps_per_call=6, **common)
        np.testing.assert_allclose(result.losses[i], alone.history["loss"], rtol=1e-10)
        for a, b in zip(jax.tree.leaves(eqx.filter(result.model(i), eqx.is_inexact_array)),
                        jax.tree.leaves(eqx.filter(alone.model, eqx.is_inexact_array))):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert not np.allclose(result.losses[0], result.losses[1])  # the seeds differ
    with pytest.raises(ValueError, match="seeds is empty"):
        T.sweep(make_model, T.classification_loss(), d, seeds=[], **common)
