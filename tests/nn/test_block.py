"""ODEBlock: solutions against closed forms, every gradient method against forward
mode and central finite differences, stats, pytree states, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from odeflow.nn import GRADIENTS, ODEBlock


class Field(eqx.Module):
    """A small MLP on (h, t): depth-dependent dynamics."""

    mlp: eqx.nn.MLP

    def __init__(self, dim, key):
        self.mlp = eqx.nn.MLP(dim + 1, dim, 8, 1, activation=jnp.tanh, key=key)

    def __call__(self, t, h, args):
        return self.mlp(jnp.concatenate([h, jnp.atleast_1d(t)]))


def _loss(block, h):
    return jnp.sum(jnp.sin(block(h)))


def _flat_grad(block, h):
    g_block, g_h = eqx.filter_grad(_loss)(block, h), jax.grad(lambda x: _loss(block, x))(h)
    leaves = jax.tree.leaves(eqx.filter(g_block, eqx.is_inexact_array))
    return np.concatenate([np.ravel(x) for x in leaves] + [np.asarray(g_h)])


def test_linear_block_matches_the_matrix_exponential():
    a = jnp.array([[-1.0, 2.0], [-2.0, -1.0]])
    h0 = jnp.array([1.0, 0.5])
    block = ODEBlock(lambda t, h, args: a @ h, t1=2.0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(block(h0), expm(2.0 * np.asarray(a)) @ np.asarray(h0), rtol=1e-7)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_gradients_agree_with_forward_mode_and_finite_differences(gradient):
    h0 = jnp.array([0.3, -0.7])
    field = Field(2, jax.random.key(0))
    make = lambda g: ODEBlock(field, gradient=g, rtol=1e-10, atol=1e-12)
    grad = _flat_grad(make(gradient), h0)
    reference = _flat_grad(make("forward"), h0)
    # backsolve solves the adjoint backwards: exact only up to its tolerance
    tol = 1e-6 if gradient == "backsolve" else 1e-10
    np.testing.assert_allclose(grad, reference, rtol=tol, atol=tol)
    # central differences in the initial state and one weight matrix
    eps = 1e-6
    block = make(gradient)
    for i in range(2):
        e = jnp.zeros(2).at[i].set(eps)
        fd = (_loss(block, h0 + e) - _loss(block, h0 - e)) / (2 * eps)
        assert grad[-2 + i] == pytest.approx(float(fd), rel=1e-6, abs=1e-8)
    w = field.mlp.layers[0].weight
    bump = lambda d: eqx.tree_at(lambda b: b.vector_field.mlp.layers[0].weight, block, w + d)
    e = jnp.zeros_like(w).at[1, 2].set(eps)
    fd = (_loss(bump(e), h0) - _loss(bump(-e), h0)) / (2 * eps)
    g_w = eqx.filter_grad(_loss)(block, h0).vector_field.mlp.layers[0].weight
    assert float(g_w[1, 2]) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)


def test_gradients_through_args_and_pytree_state():
    def field(t, h, args):
        return {"x": -args["rate"] * h["x"], "v": h["x"] * args["rate"]}

    block = ODEBlock(field, rtol=1e-10, atol=1e-12)
    h0 = {"x": jnp.array([1.0, 2.0]), "v": jnp.zeros(2)}
    args = {"rate": jnp.asarray(0.5)}
    out = block(h0, args)
    np.testing.assert_allclose(out["x"], np.exp(-0.5) * np.array([1.0, 2.0]), rtol=1e-8)
    # d/d rate of sum(x(1)) = -sum(x0) exp(-rate)
    grads = {g: jax.grad(lambda a: jnp.sum(ODEBlock(field, gradient=g, rtol=1e-10, atol=1e-12)(
        h0, a)["x"]))(args)["rate"] for g in GRADIENTS}
    for g, value in grads.items():
        assert float(value) == pytest.approx(-3.0 * np.exp(-0.5), rel=1e-6), g


def test_batch_as_one_state_and_under_vmap():
    field = Field(3, jax.random.key(1))
    block = ODEBlock(lambda t, h, a: jax.vmap(lambda x: field(t, x, a))(h), rtol=1e-8,
                     atol=1e-10)
    batch = jax.random.normal(jax.random.key(2), (5, 3))
    together = block(batch)
    single = ODEBlock(field, rtol=1e-8, atol=1e-10)
    mapped = jax.vmap(single)(batch)
    np.testing.assert_allclose(together, mapped, rtol=1e-6, atol=1e-8)


def test_solve_reports_forward_stats():
    block = ODEBlock(lambda t, h, a: -h, solver="tsit5", dt0=0.1, rtol=1e-3, atol=1e-6)
    out, stats = block.solve(jnp.ones(2))
    steps = int(stats.num_steps)
    assert steps >= 1 and int(stats.nfe) == 1 + 6 * steps  # FSAL: 6 new per step
    np.testing.assert_allclose(out, np.exp(-1.0) * np.ones(2), rtol=1e-3)


def test_bad_blocks_name_the_fix():
    f = lambda t, h, a: -h
    with pytest.raises(ValueError, match="unknown gradient"):
        ODEBlock(f, gradient="adjoint")
    with pytest.raises(ValueError, match="t1"):
        ODEBlock(f, t0=1.0, t1=1.0)
    with pytest.raises(ValueError, match="unknown solver"):
        ODEBlock(f, solver="rk45")
    with pytest.raises(ValueError, match="rtol"):
        ODEBlock(f, rtol=-1.0)
    with pytest.raises(ValueError, match="RecursiveCheckpointAdjoint.*ImplicitAdjoint"):
        ODEBlock(f, solver="ptc", gradient="backsolve")  # no trajectory to retrace


def test_gradient_check_reports_errors_and_backward_work():
    from odeflow.nn import gradient_check

    block = ODEBlock(Field(2, jax.random.key(3)), dt0=0.05, rtol=1e-9, atol=1e-12)
    report = gradient_check(block, jnp.array([0.2, 0.4]))
    assert set(report) == set(GRADIENTS)
    for method, r in report.items():
        assert r["max_rel_error_vs_forward"] < (1e-5 if method == "backsolve" else 1e-10), method
        assert r["directional_error_vs_fd"] < 1e-6, method
        assert r["nfe_forward"] > 0 and r["nfe_backward"] > 0, method
    # discretise-then-optimise: one vector-Jacobian product per stage evaluation
    assert report["checkpoint"]["nfe_backward"] == report["direct"]["nfe_backward"]
    assert report["checkpoint"]["nfe_backward"] <= report["checkpoint"]["nfe_forward"]
    # forward mode: one vectorised Jacobian-vector product per evaluation, carrying a
    # tangent for every parameter and initial-state entry
    num_inputs = sum(x.size for x in jax.tree.leaves(eqx.filter(block, eqx.is_inexact_array))) + 2
    assert report["forward"]["nfe_backward"] == report["forward"]["nfe_forward"]
    assert report["forward"]["tangents"] == num_inputs


def test_block_under_jit_with_a_closed_over_state():
    """A concrete initial state closed over by a jitted function is checked for NaN
    on the host, not traced (regression: the check raised TracerBoolConversionError)."""
    h0 = jnp.ones((3, 2))
    block = ODEBlock(lambda t, h, args: -h, rtol=1e-8, atol=1e-10)
    out = eqx.filter_jit(lambda b: b(h0))(block)
    np.testing.assert_allclose(out, np.exp(-1.0) * np.ones((3, 2)), rtol=1e-6)
    bad = h0.at[0, 0].set(jnp.nan)
    with pytest.raises(ValueError, match="NaN"):
        eqx.filter_jit(lambda b: b(bad))(block)


def test_trajectory_matches_the_closed_form():
    block = ODEBlock(lambda t, h, args: -h, rtol=1e-9, atol=1e-12)
    ts = jnp.linspace(0.5, 3.0, 6)
    ys, stats = block.trajectory(jnp.ones(2), ts)
    np.testing.assert_allclose(ys[:, 0], np.exp(-(ts - 0.5)), rtol=1e-7)
    with pytest.raises(ValueError, match="1-D array"):
        block.trajectory(jnp.ones(2), jnp.ones((2, 2)))


def test_per_sample_batching_takes_each_sample_its_own_steps():
    """Rates 0.5 to 200 carried in the state: per sample, each solve takes its own
    steps and equals the solve of that sample alone; jointly, one step sequence."""
    rates = jnp.array([0.5, 1.0, 20.0, 200.0])
    field = lambda t, h, a: -h[:, :1] * h * jnp.array([0.0, 1.0])
    h0 = jnp.stack([rates, jnp.ones(4)], axis=1)
    joint = ODEBlock(field, rtol=1e-6, atol=1e-8)
    per = ODEBlock(field, rtol=1e-6, atol=1e-8, batching="per-sample")
    out, stats = per.solve(h0)
    steps = np.asarray(stats.num_steps)
    assert steps.shape == (4,) and np.all(np.diff(steps) > 0)  # stiffer, more steps
    np.testing.assert_allclose(out[:, 1], np.exp(-np.asarray(rates)), rtol=1e-5, atol=1e-7)
    for i in range(4):
        alone, alone_stats = joint.solve(h0[i:i + 1])
        np.testing.assert_allclose(out[i], alone[0], rtol=1e-12)
        assert int(alone_stats.num_steps) == steps[i]
    joint_out, joint_stats = joint.solve(h0)
    assert np.ndim(joint_stats.num_steps) == 0 and int(joint_stats.num_steps) > steps[1]
    np.testing.assert_allclose(joint_out, out, rtol=1e-5, atol=1e-7)
    ys, _ = per.trajectory(h0, jnp.linspace(0.0, 1.0, 3))
    assert ys.shape == (3, 4, 2)
    grad = jax.grad(lambda h: jnp.sum(per(h)))(h0)
    np.testing.assert_allclose(grad[:, 1], np.exp(-np.asarray(rates)), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("t0, t1, dt0, steps", [(0.0, 1.0, 0.1, 10), (0.0, 1.0, 0.3, 4), (1.0, 0.0, 0.25, 4)])
def test_constant_steps_equal_diffrax_constant_step_size(t0, t1, dt0, steps):
    """adaptive=False: constant steps of dt0 in the direction of integration (the
    last one shortened to end on t1), the same numbers as diffrax's own solve with
    ConstantStepSize, forward and under jax.grad."""
    import diffrax as dfx

    field = Field(3, jax.random.key(1))
    h0 = jnp.array([0.3, -0.2, 0.5])
    block = ODEBlock(field, t0=t0, t1=t1, adaptive=False, dt0=dt0)
    out, stats = block.solve(h0)
    assert int(stats.num_steps) == steps and int(stats.num_rejected) == 0

    def reference(f, h):
        sol = dfx.diffeqsolve(dfx.ODETerm(f), dfx.Tsit5(), t0, t1, dt0 * np.sign(t1 - t0), h,
                              stepsize_controller=dfx.ConstantStepSize())
        return sol.ys[-1]

    np.testing.assert_allclose(out, reference(field, h0), rtol=1e-13, atol=1e-14)
    grads = eqx.filter_grad(lambda b, h: jnp.sum(jnp.sin(b(h))))(block, h0)
    expected = eqx.filter_grad(lambda f, h: jnp.sum(jnp.sin(reference(f, h))))(field, h0)
    for got, want in zip(jax.tree.leaves(grads.vector_field), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_vmap_batching_hands_the_field_one_sample():
    """batching="vmap": the field sees one sample (no batch axis), each sample takes
    its own steps, and the result equals the joint solve of that sample alone and
    the per-sample solve of a field written for batches."""
    rates = jnp.array([0.5, 1.0, 20.0, 200.0])
    h0 = jnp.stack([rates, jnp.ones(4)], axis=1)
    shapes = []

    def one(t, h, a):
        shapes.append(h.shape)
        return -h[0] * h * jnp.array([0.0, 1.0])

    block = ODEBlock(one, rtol=1e-6, atol=1e-8, batching="vmap")
    out, stats = block.solve(h0)
    assert set(shapes) == {(2,)}
    steps = np.asarray(stats.num_steps)
    assert steps.shape == (4,) and np.all(np.diff(steps) > 0)
    batched = ODEBlock(lambda t, h, a: -h[:, :1] * h * jnp.array([0.0, 1.0]), rtol=1e-6, atol=1e-8,
                       batching="per-sample")
    per_out, per_stats = batched.solve(h0)
    np.testing.assert_allclose(out, per_out, rtol=1e-12)
    np.testing.assert_array_equal(steps, np.asarray(per_stats.num_steps))
    alone = ODEBlock(one, rtol=1e-6, atol=1e-8)
    for i in range(4):
        np.testing.assert_allclose(out[i], alone(h0[i]), rtol=1e-12)
    ys, _ = block.trajectory(h0, jnp.linspace(0.0, 1.0, 3))
    assert ys.shape == (3, 4, 2)
    np.testing.assert_allclose(ys[-1], out, rtol=1e-12)
    grad = jax.grad(lambda h: jnp.sum(block(h)))(h0)
    np.testing.assert_allclose(grad[:, 1], np.exp(-np.asarray(rates)), rtol=1e-5, atol=1e-7)


def test_scalar_settings_may_be_jax_or_numpy_scalars():
    """Times, tolerances and dt0 given as JAX or NumPy scalars are kept as Python
    floats, with no warning, and solve as the Python numbers do."""
    import warnings

    field = lambda t, h, a: -h
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        block = ODEBlock(field, t0=jnp.asarray(0.5), t1=np.float32(2.0), rtol=jnp.asarray(1e-5),
                         atol=np.float64(1e-8), dt0=jnp.asarray(0.1))
    assert all(type(v) is float for v in (block.t0, block.t1, block.rtol, block.atol, block.dt0))
    plain = ODEBlock(field, t0=0.5, t1=2.0, rtol=1e-5, atol=1e-8, dt0=0.1)
    np.testing.assert_array_equal(block(jnp.ones(2)), plain(jnp.ones(2)))
