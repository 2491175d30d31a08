"""Augmented ODE blocks and the dimension-changing layer."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from odeflow.nn import GRADIENTS, AugmentedODEBlock, ChangeDimension, ODEBlock

# a rotation that reaches the augmented coordinate: x -> -x needs the extra room
A = jnp.array([[0.0, -np.pi], [np.pi, 0.0]])


def test_augmented_block_pads_with_zeros_and_maps_x_to_minus_x():
    block = AugmentedODEBlock(ODEBlock(lambda t, h, a: h @ A.T, rtol=1e-10, atol=1e-12), augment=1)
    x = jnp.array([[1.0], [-0.5], [2.0]])  # a batch of 1-D states
    out = block(x)
    assert out.shape == (3, 2)
    padded = np.concatenate([np.asarray(x), np.zeros((3, 1))], axis=1)
    np.testing.assert_allclose(out, padded @ expm(np.asarray(A)).T, atol=1e-8)
    np.testing.assert_allclose(out[:, 0], -np.asarray(x[:, 0]), atol=1e-8)  # half a turn


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_gradients_through_augmented_block_and_change_dimension(gradient):
    field = eqx.nn.MLP(3, 3, 6, 1, activation=jnp.tanh, key=jax.random.key(0))
    block = AugmentedODEBlock(ODEBlock(lambda t, h, a: field(h), gradient=gradient,
                                       rtol=1e-10, atol=1e-12), augment=1)
    head = ChangeDimension(3, 1, key=jax.random.key(1))
    x = jnp.array([0.3, -0.2])
    loss = lambda x: jnp.sum(head(block(x)) ** 2)
    grad = jax.grad(loss)(x)
    eps = 1e-6
    for i in range(2):
        e = jnp.zeros(2).at[i].set(eps)
        assert float(grad[i]) == pytest.approx(float((loss(x + e) - loss(x - e)) / (2 * eps)),
                                               rel=1e-5, abs=1e-8)


def test_change_dimension_on_batches_and_bad_input():
    layer = ChangeDimension(4, 2, key=jax.random.key(2))
    h = jax.random.normal(jax.random.key(3), (5, 3, 4))
    out = layer(h)
    assert out.shape == (5, 3, 2)
    np.testing.assert_allclose(out[2, 1], layer.linear(h[2, 1]), rtol=1e-12)
    with pytest.raises(ValueError, match="last axis of 4"):
        layer(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="augment"):
        AugmentedODEBlock(ODEBlock(lambda t, h, a: h), augment=0)
    with pytest.raises(TypeError, match="shape"):
        AugmentedODEBlock(ODEBlock(lambda t, h, a: h), augment=1)(jnp.asarray(1.0))
