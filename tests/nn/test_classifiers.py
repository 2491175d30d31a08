import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from odeflow import nn
from odeflow.solvers import SolverStats

SHAPES = {"mlp": (1, 8, 8), "conv": (1, 8, 8), "conv1d": (1, 12)}


def _model(cls, shape_key, **kw):
    kind = "mlp" if shape_key == "mlp" else "conv"
    return cls(SHAPES[shape_key], 5, key=jax.random.key(0), kind=kind, width=8, hidden=16, **kw)


@pytest.mark.parametrize("shape_key", list(SHAPES))
@pytest.mark.parametrize("cls", [nn.ODENet, nn.ResNet, nn.RKNet])
def test_shapes_jit_grad(cls, shape_key):
    model = _model(cls, shape_key)
    x = jax.random.normal(jax.random.key(1), (3,) + SHAPES[shape_key])
    logits, stats = eqx.filter_jit(lambda m, x: m.solve(x))(model, x)
    assert logits.shape == (3, 5) and isinstance(stats, SolverStats)
    np.testing.assert_allclose(model(x), logits, rtol=1e-5, atol=1e-6)
    if cls is not nn.ODENet:  # the adaptive ODE-Net picks its steps for the whole batch
        single = jax.vmap(lambda xi: model(xi[None])[0])(x)
        np.testing.assert_allclose(single, logits, atol=1e-5)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2))(model)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and sum(norms) > 0


def test_bodies_and_parameters():
    ode, res, rk = (_model(c, "conv") for c in (nn.ODENet, nn.ResNet, nn.RKNet))
    x = jnp.ones((2, 1, 8, 8))
    assert int(rk.solve(x)[1].nfe) == 4 * 4  # four RK4 steps
    assert int(res.solve(x)[1].nfe) == 6
    assert nn.parameter_count(ode) == nn.parameter_count(rk)
    field = nn.parameter_count(ode.block.vector_field)
    assert nn.parameter_count(res) - nn.parameter_count(ode) == 5 * field


def test_strided_kind_has_the_mnist1d_reference_sizes():
    """kind="strided" is the MNIST-1D reference CNN (Greydanus 2020) around the body:
    25 channels make 5,210 parameters on (1, 40) signals; with an ODE block of 18
    channels 5,086, and six residual blocks 15,526; on 8x8 images 11,810 / 9,898 / 34,538."""
    key = jax.random.key(0)
    for shape, sizes in (((1, 40), (5210, 5086, 15526)), ((1, 8, 8), (11810, 9898, 34538))):
        width = 18 if len(shape) == 2 else 16
        models = (nn.CNN(shape, 10, width=25, key=key),
                  nn.ODENet(shape, 10, kind="strided", width=width, key=key),
                  nn.ResNet(shape, 10, kind="strided", width=width, key=key))
        assert tuple(nn.parameter_count(m) for m in models) == sizes


def test_cnn_is_its_convolutions_in_order():
    model = nn.CNN((1, 40), 10, width=6, key=jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (3, 1, 40))
    logits, stats = eqx.filter_jit(lambda m, x: m.solve(x))(model, x)
    (first,), (second, third) = model.stem.layers, model.head.convs
    by_hand = jax.vmap(lambda xi: model.head.linear(jax.nn.relu(third(jax.nn.relu(second(
        jax.nn.relu(first(xi)))))).reshape(-1)))(x)
    np.testing.assert_allclose(logits, by_hand, rtol=1e-5, atol=1e-6)
    assert int(stats.nfe) == 0 and first.kernel_size == (5,) and first.stride == (2,)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2))(model)
    assert all(np.isfinite(float(jnp.linalg.norm(g))) for g in jax.tree.leaves(grads))


def test_rknet_equals_hand_rk4():
    model = _model(nn.RKNet, "mlp", steps=2)
    x = jax.random.normal(jax.random.key(2), (4, 1, 8, 8))
    h = jax.vmap(model.stem)(x)
    f = lambda t, y: model.block.vector_field(t, y)
    dt = 0.5
    for i in range(2):
        t = i * dt
        k1 = f(t, h)
        k2 = f(t + dt / 2, h + dt / 2 * k1)
        k3 = f(t + dt / 2, h + dt / 2 * k2)
        k4 = f(t + dt, h + dt * k3)
        h = h + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    np.testing.assert_allclose(model(x), jax.vmap(model.head)(h), rtol=1e-5, atol=1e-5)


def test_bad_inputs():
    model = _model(nn.ODENet, "mlp")
    with pytest.raises(ValueError, match=r"\(batch, 1, 8, 8\)"):
        model(jnp.ones((2, 64)))
    with pytest.raises(ValueError, match="unknown kind"):
        nn.ODENet((4,), 3, key=jax.random.key(0), kind="transformer")
    with pytest.raises(ValueError, match="kind='mlp'"):
        nn.ODENet((4,), 3, key=jax.random.key(0), kind="conv")
    with pytest.raises(ValueError, match="depth"):
        nn.ResNet((4,), 3, key=jax.random.key(0), depth=0)
    with pytest.raises(ValueError, match="kind='strided' or kind='conv'"):
        nn.CNN((1, 40), 3, key=jax.random.key(0), kind="mlp")
    with pytest.raises(ValueError, match="three stride-2 convolutions.*kind='conv'"):
        nn.ODENet((1, 2), 3, key=jax.random.key(0), kind="strided")


def test_penalties_on_a_linear_field():
    """f = A h: the kinetic energy is ∫ |A exp(At) h0|² dt and the Hutchinson
    estimate is exactly (t1 - t0) |A^T ε|² for the drawn ε."""
    with jax.enable_x64(True):
        a = jnp.array([[-0.5, 1.0], [-1.0, -0.2]])
        block = nn.ODEBlock(lambda t, h, args: h @ a.T, t1=2.0, rtol=1e-10, atol=1e-12)
        h0 = jnp.array([[1.0, 0.5], [0.2, -1.0]])
        key = jax.random.key(7)
        h1, stats, pen = nn.solve_penalised(block, h0, key=key)
        np.testing.assert_allclose(h1, block(h0), rtol=1e-8)
        ts = np.linspace(0, 2, 4001)
        hs = np.stack([np.asarray(h0) @ np.asarray(jax.scipy.linalg.expm(a * t)).T for t in ts])
        kinetic = np.trapezoid(((hs @ np.asarray(a).T) ** 2).sum(axis=(1, 2)), ts)
        np.testing.assert_allclose(float(pen.kinetic), kinetic, rtol=1e-5)
        eps = jax.random.normal(jax.random.split(key, 1)[0], h0.shape, h0.dtype)
        np.testing.assert_allclose(float(pen.jacobian), 2.0 * float(jnp.sum((eps @ a) ** 2)), rtol=1e-8)
        # the penalties are differentiable in reverse and forward mode
        for gradient in ("checkpoint", "forward"):
            b = dataclasses.replace(block, gradient=gradient)
            g = jax.grad(lambda h: nn.solve_penalised(b, h, key=key)[2].kinetic)(h0)
            assert np.all(np.isfinite(np.asarray(g)))


def test_odenet_penalised_logits_match():
    model = _model(nn.ODENet, "conv1d")
    x = jax.random.normal(jax.random.key(1), (3, 1, 12))
    logits, stats, pen = model.solve_penalised(x, key=jax.random.key(0))
    np.testing.assert_allclose(logits, model(x), atol=1e-3)
    assert float(pen.kinetic) > 0 and float(pen.jacobian) > 0


@pytest.mark.parametrize("spatial", [(9,), (5, 6)])
def test_same_convolution_equals_equinox_conv(spatial):
    """The conv fields' matrix-product convolution gives equinox's convolution (3-wide
    kernel, padding 1) and its gradients with respect to the input and the kernel."""
    k1, k2 = jax.random.split(jax.random.key(0))
    conv = eqx.nn.Conv(len(spatial), 4, 3, 3, padding=1, key=k1)
    x = jax.random.normal(k2, (2, 4) + spatial)
    np.testing.assert_allclose(nn.same_convolution(conv, x), jax.vmap(conv)(x), rtol=1e-5, atol=1e-6)
    loss = lambda c, x, fn: jnp.sum(jnp.sin(fn(c, x)))
    ours = eqx.filter_grad(lambda c, x: loss(c, x, nn.same_convolution))(conv, x)
    theirs = eqx.filter_grad(lambda c, x: loss(c, x, lambda c, x: jax.vmap(c)(x)))(conv, x)
    np.testing.assert_allclose(ours.weight, theirs.weight, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ours.bias, theirs.bias, rtol=1e-5, atol=1e-5)
    gx = jax.grad(lambda x: loss(conv, x, nn.same_convolution))(x)
    np.testing.assert_allclose(gx, jax.grad(lambda x: loss(conv, x, lambda c, x: jax.vmap(c)(x)))(x),
                               rtol=1e-5, atol=1e-5)


def test_same_convolution_refuses_other_convolutions():
    key = jax.random.key(0)
    x = jnp.ones((2, 4, 9))
    for conv in (eqx.nn.Conv(1, 4, 3, 5, padding=2, key=key),
                 eqx.nn.Conv(1, 4, 3, 3, stride=2, padding=1, key=key),
                 eqx.nn.Conv(1, 4, 3, 3, padding=0, key=key)):
        with pytest.raises(ValueError, match="3-wide kernel"):
            nn.same_convolution(conv, x)
    with pytest.raises(ValueError, match="spatial axes"):
        nn.same_convolution(eqx.nn.Conv(1, 4, 3, 3, padding=1, key=key), jnp.ones((2, 5, 9)))
