"""Levenberg-Marquardt on Gauss-Newton products: exact on linear least squares,
trains the sigmoid problems, monotone, counted, and checks its arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from odeflow.solvers import CG, GMRES, Dense
from odeflow.problems import get_task
from odeflow.flow import CompositeLoss, levenberg_marquardt

X = np.array([[1.0, 0.5], [0.2, 2.0], [1.5, -1.0], [0.3, 0.3]])
Y = np.array([1.0, -1.0, 0.5, 2.0])
LINEAR = CompositeLoss(lambda w: jnp.asarray(X) @ w, lambda o: 0.5 * jnp.sum((o - Y) ** 2))


@pytest.mark.parametrize("linear_solver", [Dense(), CG(rtol=1e-12), GMRES(rtol=1e-12)])
def test_linear_least_squares_solution(linear_solver):
    res = levenberg_marquardt(LINEAR, jnp.array([5.0, -5.0]), damping=1e-8, max_iters=20,
                              linear_solver=linear_solver)
    np.testing.assert_allclose(np.asarray(res.params), np.linalg.lstsq(X, Y, rcond=None)[0],
                               rtol=1e-8)


def test_trains_parity_monotone_with_exact_counts():
    task = get_task("parity4")
    res = levenberg_marquardt(task.composite_loss, task.init(jax.random.key(0)), target_loss=1e-3,
                              max_iters=500)
    assert res.status_name == "target_reached" and float(res.loss) < 1e-3
    hist = np.asarray(res.loss_history)
    hist = hist[~np.isnan(hist)]
    assert np.all(np.diff(hist) < 0)  # only loss-decreasing steps are accepted
    s = res.stats
    assert int(s.num_steps) == int(s.num_accepted) + int(s.num_rejected)
    assert int(s.nfe) == int(s.num_accepted) + 1  # one gradient per accepted point
    assert int(s.num_loss_evals) == int(s.num_linear_solves) == int(s.num_steps)
    assert len(hist) == int(s.num_accepted) + 1


def test_bad_arguments_name_the_fix():
    with pytest.raises(TypeError, match="CompositeLoss"):
        levenberg_marquardt(lambda w: jnp.sum(w**2), jnp.ones(2))
    with pytest.raises(ValueError, match="damping"):
        levenberg_marquardt(LINEAR, jnp.ones(2), damping=0.0)
    with pytest.raises(ValueError, match="linear_solver"):
        levenberg_marquardt(LINEAR, jnp.ones(2), linear_solver="qr")
    with pytest.raises(ValueError, match="NaN"):
        levenberg_marquardt(LINEAR, jnp.array([1.0, jnp.nan]))
