"""What `gradient_flow` does with nothing but a loss, parameters and a target: the
defaults a new user gets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import odeflow
from odeflow.flow import CompositeLoss
from odeflow.flow._flow import (
    EXACT_CURVATURE_LIMIT,
    UNBOUNDED,
    default_flow_solver,
    default_minimum_solver,
)
from odeflow.solvers import PseudoTransient, SecantPseudoTransient

X = jax.random.normal(jax.random.key(0), (40, 3))
Y = jnp.tanh(X @ jnp.array([1.0, -2.0, 0.5]))[:, None]
predict = lambda p: jnp.tanh(X @ p["w"]) @ p["v"]
composite = CompositeLoss(predict, lambda out: jnp.mean((out - Y) ** 2))
plain = lambda p: jnp.mean((predict(p) - Y) ** 2)
P0 = {"w": 0.5 * jax.random.normal(jax.random.key(1), (3, 4)), "v": 0.5 * jnp.ones((4, 1))}


def _same(a, b):
    assert int(a.stats.num_steps) == int(b.stats.num_steps) and int(a.stats.nfe) == int(b.stats.nfe)
    np.testing.assert_allclose(float(a.loss), float(b.loss), rtol=1e-12)


def test_with_a_target_it_heads_for_the_minimum():
    res = odeflow.gradient_flow(plain, P0, target_loss=1e-3)
    assert res.status_name == "target_reached"
    # pseudo-transient continuation with its steady-state tolerance √ε and no horizon
    tol = float(np.sqrt(np.finfo(np.float64).eps))
    assert isinstance(default_minimum_solver(16), PseudoTransient)  # 16 parameters: exact curvature
    _same(res, odeflow.gradient_flow(plain, P0, solver=default_minimum_solver(16), target_loss=1e-3,
                                     rtol=tol, atol=tol, t1=UNBOUNDED, curvature="hessian"))
    assert int(res.stats.num_linear_solves) == int(res.stats.num_steps)  # one solve per step
    # fewer steps than following the flow to the same target
    flow = odeflow.gradient_flow(plain, P0, solver="auto-flow", target_loss=1e-3)
    assert flow.status_name == "target_reached"
    assert int(res.stats.num_steps) < int(flow.stats.num_steps)


def test_above_the_size_limit_the_curvature_comes_from_gradients():
    """Above `EXACT_CURVATURE_LIMIT` parameters the default is limited-memory secant
    pseudo-transient continuation: one gradient per step, no curvature products but
    the first step's, and fewer steps than following the flow."""
    wide = {"w": 0.5 * jax.random.normal(jax.random.key(2), (3, 40)),
            "v": 0.2 * jax.random.normal(jax.random.key(3), (40, 1))}
    assert 3 * 40 + 40 > EXACT_CURVATURE_LIMIT
    res = odeflow.gradient_flow(plain, wide, target_loss=1e-3)
    assert res.status_name == "target_reached"
    tol = float(np.sqrt(np.finfo(np.float64).eps))
    _same(res, odeflow.gradient_flow(plain, wide, solver=SecantPseudoTransient(), target_loss=1e-3,
                                     rtol=tol, atol=tol, t1=UNBOUNDED))
    assert isinstance(default_minimum_solver(160), SecantPseudoTransient)
    assert int(res.stats.num_jvps) == 1 and int(res.stats.nfe) <= int(res.stats.num_steps) + 3
    flow = odeflow.gradient_flow(plain, wide, solver="auto-flow", target_loss=1e-3)
    assert int(res.stats.nfe) < int(flow.stats.nfe)


def test_without_a_target_or_with_trajectory_options_it_follows_the_flow():
    for kwargs in ({"t1": 1.0}, {"target_loss": 1e-3, "error_space": "loss"},
                   {"target_loss": 1e-3, "rtol_final": 1e-5}):
        res = odeflow.gradient_flow(plain, P0, **kwargs)
        explicit = odeflow.gradient_flow(plain, P0, solver=default_flow_solver(),
                                         **({"rtol": 1e-4, "atol": 1e-6} | kwargs))
        _same(res, explicit)
    assert float(odeflow.gradient_flow(plain, P0, t1=None, max_steps=50, throw=False).t) <= 1e4


def test_gauss_newton_whenever_the_loss_exposes_its_parts():
    auto = odeflow.gradient_flow(composite, P0, target_loss=1e-3)
    _same(auto, odeflow.gradient_flow(composite, P0, target_loss=1e-3, curvature="gauss-newton"))
    assert auto.status_name == "target_reached"
    hessian = odeflow.gradient_flow(composite, P0, target_loss=1e-3, curvature="hessian")
    assert int(hessian.stats.num_steps) != int(auto.stats.num_steps) or \
        float(hessian.loss) != float(auto.loss)


def test_defaults_compose_with_jit_and_vmap():
    run = lambda p: odeflow.gradient_flow(plain, p, target_loss=1e-3, throw=False)
    batch = jax.tree.map(lambda x: jnp.stack([x, 1.1 * x]), P0)
    batched = jax.vmap(run)(batch)
    for i in range(2):
        single = jax.jit(run)(jax.tree.map(lambda x: x[i], batch))
        assert int(batched.stats.num_steps[i]) == int(single.stats.num_steps)
        # batched Hessian-vector products round differently: same steps, losses to 1e-7
        np.testing.assert_allclose(batched.loss[i], single.loss, rtol=1e-7)
    assert bool(jnp.all(batched.reached_target))


def test_float32_steady_tolerance_follows_the_dtype():
    p32 = jax.tree.map(lambda x: x.astype(jnp.float32), P0)
    res = odeflow.gradient_flow(lambda p: plain(p).astype(jnp.float32), p32, target_loss=1e-3)
    assert res.status_name == "target_reached" and res.loss.dtype == jnp.float32
