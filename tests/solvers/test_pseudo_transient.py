"""Pseudo-transient continuation: steady states against references, the SER step
rule, and its identity with a Levenberg-Marquardt step."""

import dataclasses

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import odeflow
from odeflow.solvers import SERController, StepReport, Work
from odeflow.flow import levenberg_marquardt

A, B = 1.0, 1.5  # Brusselator with a stable equilibrium (A, B / A): B < 1 + A^2
STIFF = 1e3  # the second equation is fast


def _brusselator(t, y, args):
    x, z = y
    return jnp.stack([A - (B + 1) * x + x**2 * z, STIFF * (B * x - x**2 * z)])


@pytest.mark.parametrize("name", ["ptc-dense", "ptc-gmres"])
def test_steady_state_of_stiff_brusselator(name):
    y0 = np.array([3.0, 0.5])
    ref = solve_ivp(lambda t, y: np.asarray(_brusselator(t, jnp.asarray(y), None)), (0, 200.0),
                    y0, method="Radau", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ref.y[:, -1], [A, B / A], rtol=1e-8)  # the reference is settled
    sol = odeflow.solve(_brusselator, jnp.asarray(y0), t0=0.0, t1=1e12, solver=name, dt0=1e-3,
                        rtol=1e-10, atol=1e-12, max_steps=500)
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), ref.y[:, -1], rtol=1e-8)
    assert int(sol.stats.num_steps) < ref.y.shape[1]  # far fewer steps than following it


def test_linear_steady_state_in_newton_regime():
    """On a linear problem the step is exact Newton once h is large: it lands on the
    equilibrium, and the steps grow by the SER ratio, at most `max_growth` each."""
    mat = jnp.array([[-2.0, 1.0], [0.5, -30.0]])
    y_star = jnp.array([1.0, -2.0])
    vf = lambda t, y, a: mat @ (y - y_star)
    sol = odeflow.solve(vf, jnp.zeros(2), t0=0.0, t1=1e15, solver="ptc-dense", dt0=1e-3,
                        max_steps=200)
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), np.asarray(y_star), rtol=1e-10)
    # from h = 1e-3 to 1e15 needs at least 18 steps at growth <= 10
    assert 18 <= int(sol.stats.num_steps) < 60
    assert int(sol.stats.num_rejected) == 0


def _report(before, after):
    return StepReport(None, Work.of(), (jnp.asarray(before), jnp.asarray(after)))


def test_ser_controller_rejects_growth_and_nonfinite():
    ctrl = SERController(rtol=1e-8, atol=1e-12, max_growth=10.0, min_growth=1.2, reject_growth=2.0)
    # the first step's residual becomes the reference; no loss is checked
    # steps unbounded, not jumping to the end
    initial = (jnp.asarray(jnp.nan), jnp.asarray(jnp.nan), jnp.asarray(jnp.inf), jnp.array(False))
    adapt = lambda before, after: ctrl.adapt_step_size(0.0, 1.0, None, None, None,
                                                       _report(before, after), 1, initial)
    keep, t0, t1, *_ = adapt(1.0, 0.5)  # residual halved: step doubles
    assert bool(keep) and float(t0) == 1.0 and float(t1) == pytest.approx(3.0)
    keep, _, t1, *_ = adapt(1.0, 1e-6)  # growth capped at 10
    assert float(t1) == pytest.approx(11.0)
    keep, _, t1, *_ = adapt(1.0, 1.5)  # a rise below reject_growth still grows by 1.2
    assert bool(keep) and float(t1) == pytest.approx(2.2)
    keep, t0, t1, *_ = adapt(1.0, 3.0)  # blow-up: rejected, step quartered
    assert not bool(keep) and float(t0) == 0.0 and float(t1) == pytest.approx(0.25)
    keep, *_ = adapt(1.0, np.inf)
    assert not bool(keep)
    out = ctrl.adapt_step_size(0.0, 1.0, None, None, None, _report(1.0, 1e-9), 1, initial)
    assert bool(out[0]) and float(out[2]) == np.inf  # steady (1e-9 <= 1e-8 * 1): on to the end
    with pytest.raises(TypeError, match="reporting"):  # the residuals travel in the report
        ctrl.adapt_step_size(0.0, 1.0, None, None, None, jnp.ones(2), 1, initial)


def test_ptc_gauss_newton_step_is_a_levenberg_marquardt_step():
    """(I/h + G) δ = -∇L: one PTC step with Gauss-Newton curvature from pseudo-time
    step h is the Levenberg-Marquardt step with damping 1/h."""
    task = odeflow.problems.get_task("xor")
    params = task.init(jax.random.key(1))
    h = 0.7
    solver = dataclasses.replace(odeflow.solvers.get_solver("ptc-dense"), reject_growth=1e9)
    ptc = odeflow.gradient_flow(task.composite_loss, params, solver=solver, dt0=h, t1=h,
                                curvature="gauss-newton", history=False)
    lm = levenberg_marquardt(task.composite_loss, params, damping=1.0 / h, max_iters=1,
                             linear_solver="dense")
    assert int(ptc.stats.num_steps) == 1 and int(lm.stats.num_accepted) == 1
    for a, b in zip(jax.tree.leaves(ptc.params), jax.tree.leaves(lm.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)


def test_ptc_trains_to_target():
    task = odeflow.problems.get_task("encoder")
    res = odeflow.gradient_flow(task.composite_loss, task.init(jax.random.key(0)), solver="ptc",
                                curvature="gauss-newton", t1=1e30, target_loss=1e-3,
                                max_steps=2000)
    assert res.status_name == "target_reached"
    s = res.stats
    # f0 and f(y1) per step, + the first step's evaluation (and one product)
    assert int(s.nfe) == 2 * int(s.num_steps) + 1
    assert int(s.num_linear_solves) == int(s.num_steps) and int(s.num_jacobians) == 0


def test_first_pseudo_time_step_is_the_inverse_curvature_along_the_field():
    mat = jnp.array([[-2.0, 1.0], [0.5, -30.0]])
    vf = lambda t, y, a: mat @ y + jnp.array([1.0, 2.0])
    y0 = jnp.array([0.3, -0.1])
    f = vf(0.0, y0, None)
    expected = float(f @ f / jnp.abs(f @ mat @ f))
    assert float(odeflow.solvers.pseudo_time_step(vf, 0.0, 1e30, y0, None)) == pytest.approx(expected)
    assert float(odeflow.solvers.pseudo_time_step(vf, 0.0, -1e30, y0, None)) == pytest.approx(-expected)
    sol = odeflow.solve(vf, y0, t0=0.0, t1=1e30, solver="ptc-dense", max_steps=1, throw=False,
                        saveat=diffrax.SaveAt(steps=True))
    assert float(sol.ts[0]) == pytest.approx(expected)  # the first step ends at t0 + dt0
    # at a steady state (f = 0) there is no curvature along f: a unit step
    assert float(odeflow.solvers.pseudo_time_step(lambda t, y, a: 0 * y, 0.0, 1.0, y0, None)) == 1.0


def test_descent_check_keeps_newton_steps_from_climbing():
    """L = w²/(1 + w²) is concave beyond |w| = 1/√3, where a damped Newton step points
    uphill, towards the stationary point at infinity (L = 1): without the check the
    residual vanishes there and the run ends as steady; with it the climbing step is
    rejected, the pseudo-time step shrinks and the run reaches the minimum."""
    loss = lambda w: jnp.sum(w**2 / (1 + w**2))
    run = lambda check: odeflow.gradient_flow(loss, jnp.array([2.0]), solver="ptc-dense",
                                              target_loss=1e-6, descent_check=check, throw=False)
    climbed, checked = run(False), run(True)
    assert float(climbed.loss) > 0.99 and climbed.status_name == "horizon_reached"
    assert checked.status_name == "target_reached" and int(checked.stats.num_rejected) >= 1
    hist = np.asarray(checked.loss_history)
    hist = hist[~np.isnan(hist)]
    assert np.all(np.diff(hist) <= 0)  # accepted steps never climb
