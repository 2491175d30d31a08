"""Gauss-Newton curvature: products against explicit matrices, flows against closed
forms, and the errors that name the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

import odeflow
from odeflow.problems import get_task
from odeflow.flow import CompositeLoss, gauss_newton_products


def _flat(tree):
    return jax.flatten_util.ravel_pytree(tree)[0]


def test_ggn_products_equal_explicit_jt_h_j():
    task = get_task("parity4")
    params = task.init(jax.random.key(3))
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    loss = task.composite_loss
    predict = lambda f: loss.predict(unravel(f)).ravel()
    jac = jax.jacobian(predict)(flat)
    out = predict(flat)
    h_out = jax.hessian(lambda o: loss.output_loss(o.reshape(-1, 1)))(out)
    ggn = jac.T @ h_out @ jac
    gradient, ggn_vp = gauss_newton_products(loss, params)
    np.testing.assert_allclose(_flat(gradient), _flat(jax.grad(task.loss)(params)), rtol=1e-12)
    v = jax.random.normal(jax.random.key(0), flat.shape, flat.dtype)
    np.testing.assert_allclose(_flat(ggn_vp(unravel(v))), ggn @ v, rtol=1e-10, atol=1e-12)
    assert np.linalg.eigvalsh(ggn).min() > -1e-10  # positive semi-definite
    assert task.composite_loss is loss  # one instance per task: a stable jit key


# second-order Rosenbrock methods at looser tolerances (first-order error estimate)
@pytest.mark.parametrize("solver, tol, allowed", [("ros2-cg", 1e-5, 1e-3),
                                                  ("ros2", 1e-5, 1e-3),
                                                  ("kvaerno3-gmres", 1e-7, 1e-4)])
def test_gauss_newton_flow_on_linear_least_squares(solver, tol, allowed):
    """A linear model: the Gauss-Newton matrix is the Hessian, so the flow is exact."""
    x = np.array([[1.0, 0.5], [0.2, 2.0], [1.5, -1.0]])
    y = np.array([1.0, -1.0, 0.5])
    loss = CompositeLoss(lambda w: jnp.asarray(x) @ w, lambda o: 0.5 * jnp.sum((o - y) ** 2))
    w0 = np.array([2.0, -3.0])
    kwargs = dict(solver=solver, rtol=tol, atol=tol * 1e-2, t1=1.5)
    res = odeflow.gradient_flow(loss, jnp.asarray(w0), curvature="gauss-newton", **kwargs)
    hess = x.T @ x
    w_star = np.linalg.solve(hess, x.T @ y)
    exact = w_star + expm(-hess * 1.5) @ (w0 - w_star)
    np.testing.assert_allclose(np.asarray(res.params), exact, rtol=allowed)
    assert int(res.stats.num_jvps) > 0 or int(res.stats.num_jacobians) > 0


def test_gauss_newton_needs_composite_loss():
    with pytest.raises(TypeError, match="CompositeLoss"):
        odeflow.gradient_flow(lambda w: jnp.sum(w**2), jnp.ones(2), solver="ros2-cg",
                              curvature="gauss-newton")
    with pytest.raises(ValueError, match="unknown curvature"):
        odeflow.gradient_flow(lambda w: jnp.sum(w**2), jnp.ones(2), curvature="fisher")
