"""StepCheckpointAdjoint: the same gradients as diffrax's recursive checkpointing,
whether a solve ends among the stored steps, in a part-filled segment past them or
on a save grid; per sample under vmap; through an implicit solver; with errors that
name their fix."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import odeflow
from odeflow.solvers import StepCheckpointAdjoint


def field(t, y, p):
    """Nonlinear, time-dependent, with parameters: a damped oscillator forced by its
    own amplitude."""
    return jnp.stack([y[1], -p[0] * y[0] - p[1] * y[1] + p[2] * jnp.sin(3.0 * t) * y[0] ** 2])


P = jnp.array([9.0, 0.3, 0.8])
Y0 = jnp.array([1.0, 0.0])


def loss_of(adjoint, *, solver="tsit5", ts=None, max_steps=200, rtol=1e-6):
    def loss(p, y0):
        sol = odeflow.solve(field, y0, t0=0.0, t1=4.0, args=p, solver=solver, rtol=rtol, atol=1e-8,
                            saveat=None if ts is None else dfx.SaveAt(ts=ts), adjoint=adjoint,
                            max_steps=max_steps)
        return jnp.sum(jnp.sin(sol.ys)), sol.stats

    return loss


def _grads(adjoint, **kwargs):
    return jax.jit(jax.grad(lambda p, y0: loss_of(adjoint, **kwargs)(p, y0)[0], argnums=(0, 1)))(P, Y0)


@pytest.mark.parametrize("stored_steps, save", [(1, "t1"), (7, "ts"), (None, "t1"), (500, "ts")])
def test_gradients_equal_recursive_checkpointing(stored_steps, save):
    """Some 60 steps, a few rejected: with 1 or 7 stored starts, or the automatic
    20 (√(2 max_steps)), the backward pass recomputes segments (the last one
    part-filled); with 500 it recomputes none."""
    ts = None if save == "t1" else jnp.linspace(0.3, 4.0, 9)
    _, stats = jax.jit(loss_of(dfx.RecursiveCheckpointAdjoint(), ts=ts))(P, Y0)
    assert 30 < int(stats.num_steps) < 200 and int(stats.num_rejected) > 0
    reference = _grads(dfx.RecursiveCheckpointAdjoint(), ts=ts)
    got = _grads(StepCheckpointAdjoint(stored_steps=stored_steps), ts=ts)
    for r, g in zip(reference, got):
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-10, atol=1e-12)


def test_gradient_matches_central_differences():
    loss = jax.jit(lambda p: loss_of(StepCheckpointAdjoint(stored_steps=5), rtol=1e-10)(p, Y0)[0])
    grad = jax.grad(loss)(P)
    eps = 1e-6
    for i in range(3):
        e = jnp.zeros(3).at[i].set(eps)
        fd = (loss(P + e) - loss(P - e)) / (2 * eps)
        np.testing.assert_allclose(float(grad[i]), float(fd), rtol=1e-5)


def test_forward_pass_is_unchanged():
    """The same solution and statistics as the default adjoint: storing changes no
    step."""
    a, sa = jax.jit(loss_of(dfx.RecursiveCheckpointAdjoint()))(P, Y0)
    b, sb = jax.jit(loss_of(StepCheckpointAdjoint(stored_steps=3)))(P, Y0)
    assert float(a) == float(b)
    assert int(sa.num_steps) == int(sb.num_steps) and int(sa.nfe) == int(sb.nfe)


def test_per_sample_under_vmap():
    """Each sample takes its own number of steps; the batched gradient equals the
    samples' own."""
    y0s = jnp.array([[1.0, 0.0], [0.2, 0.5], [1.5, -1.0]])
    loss = lambda p, y0: loss_of(StepCheckpointAdjoint(stored_steps=8))(p, y0)[0]
    batched = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, 0)))(P, y0s)
    steps = [int(jax.jit(loss_of(StepCheckpointAdjoint()))(P, y)[1].num_steps) for y in y0s]
    assert len(set(steps)) > 1
    for k, y0 in enumerate(y0s):
        one = _grads_at(y0)
        for b, o in zip(batched, one):
            np.testing.assert_allclose(np.asarray(b[k]), np.asarray(o), rtol=1e-10, atol=1e-12)


def _grads_at(y0):
    loss = lambda p, y: loss_of(dfx.RecursiveCheckpointAdjoint())(p, y)[0]
    return jax.jit(jax.grad(loss, argnums=(0, 1)))(P, y0)


def test_implicit_solver_and_plain_diffeqsolve():
    """An implicit solver (Newton iterations inside each step), called through a plain
    diffrax.diffeqsolve."""
    solver = odeflow.solvers.get_solver("kvaerno3")

    def loss(p, adjoint):
        sol = dfx.diffeqsolve(dfx.ODETerm(field), solver, 0.0, 2.0, 0.01, Y0, args=p,
                              stepsize_controller=dfx.PIDController(rtol=1e-4, atol=1e-6),
                              adjoint=adjoint, max_steps=2000)
        return jnp.sum(sol.ys ** 2)

    reference = jax.jit(jax.grad(lambda p: loss(p, dfx.RecursiveCheckpointAdjoint())))(P)
    got = jax.jit(jax.grad(lambda p: loss(p, StepCheckpointAdjoint(stored_steps=4))))(P)
    np.testing.assert_allclose(np.asarray(got), np.asarray(reference), rtol=1e-9, atol=1e-12)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="positive integer"):
        StepCheckpointAdjoint(stored_steps=0)
    with pytest.raises(ValueError, match="finite max_steps"):
        dfx.diffeqsolve(dfx.ODETerm(field), dfx.Tsit5(), 0.0, 1.0, 0.1, Y0, args=P,
                        adjoint=StepCheckpointAdjoint(), max_steps=None)
    with pytest.raises(TypeError, match="adjoint=diffrax.ForwardMode"):
        jax.jvp(lambda p: loss_of(StepCheckpointAdjoint())(p, Y0)[0], (P,), (P,))
