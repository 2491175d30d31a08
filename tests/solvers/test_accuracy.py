"""Solutions against references: closed forms, scipy Radau, convergence orders."""

import dataclasses

import diffrax as dfx
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import odeflow
from stiff_problems import robertson

A = np.array([[-2.0, 1.0], [1.0, -3.0]])
Y0 = np.array([1.0, 0.5])


@pytest.mark.parametrize(
    "name, order", [("euler", 1), ("rk4", 4), ("heun", 2), ("bosh3", 3), ("tsit5", 5), ("dopri5", 5),
                    ("implicit-euler", 1), ("kvaerno3", 3), ("kvaerno5", 5), ("ros2", 2),
                    ("ros2-cg", 2), ("ros2-gmres", 2), ("implicit-euler-gmres", 1),
                    ("kvaerno3-gmres", 3), ("kvaerno3-cg", 3), ("kvaerno5-gmres", 5),
                    ("ptc-dense", 1), ("ptc-gmres", 1), ("auto", 5)]
)
def test_convergence_order(name, order):
    """Slope of log error against log step on a linear problem, fixed steps."""
    exact = expm(A * 1.0) @ Y0
    steps = [1 / 8, 1 / 16, 1 / 32] if order < 5 else [1 / 16, 1 / 32, 1 / 64]
    errors = []
    for h in steps:
        solver = odeflow.solvers.get_solver(name)
        if hasattr(solver, "krylov_rtol"):  # the order of the method, not of the solves
            solver = dataclasses.replace(solver, krylov_rtol=1e-12)
        sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, a: jnp.asarray(A) @ y), solver, 0.0, 1.0,
                              h, jnp.asarray(Y0), stepsize_controller=dfx.ConstantStepSize())
        errors.append(float(np.abs(np.asarray(sol.ys[-1]) - exact).max()))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.5), (errors, slope)


# (solver, rtol, allowed relative error): first- and second-order methods at looser
# tolerances, since their error estimates are low order
ROBERTSON = [("kvaerno3", 1e-7, 1e-4), ("kvaerno5", 1e-7, 1e-4), ("implicit-euler", 1e-4, 2e-2),
             ("kvaerno3-gmres", 1e-7, 1e-4), ("kvaerno5-gmres", 1e-7, 1e-4),
             ("implicit-euler-gmres", 1e-4, 2e-2), ("ros2", 1e-6, 1e-3), ("ros2-gmres", 1e-6, 1e-3)]


@pytest.mark.parametrize("name, rtol, allowed", ROBERTSON)
def test_robertson_against_radau(name, rtol, allowed):
    y0 = np.array([1.0, 0.0, 0.0])
    ref = solve_ivp(lambda t, y: np.asarray(robertson(t, jnp.asarray(y), None)), (0, 100.0), y0,
                    method="Radau", rtol=1e-10, atol=1e-14).y[:, -1]
    sol = odeflow.solve(robertson, jnp.asarray(y0), t0=0.0, t1=100.0, solver=name, rtol=rtol,
                        atol=1e-11, max_steps=200_000)
    err = np.abs(np.asarray(sol.ys[-1]) - ref) / (np.abs(ref) + 1e-10)
    assert err.max() < allowed, err
    assert bool(sol.success)


def test_pytree_state_and_saveat():
    y0 = {"a": jnp.ones(2), "b": jnp.array(2.0)}
    vf = lambda t, y, args: {"a": -y["a"], "b": -2 * y["b"]}
    ts = jnp.linspace(0.0, 1.0, 5)
    sol = odeflow.solve(vf, y0, t0=0.0, t1=1.0, solver="kvaerno5", saveat=dfx.SaveAt(ts=ts),
                        rtol=1e-8, atol=1e-10)
    assert sol.ys["a"].shape == (5, 2)
    np.testing.assert_allclose(sol.ys["b"], 2 * np.exp(-2 * np.asarray(ts)), rtol=1e-5)


def test_ros2_against_radau_on_van_der_pol():
    mu = 10.0
    vdp = lambda t, y, a: jnp.stack([y[1], mu * ((1 - y[0] ** 2) * y[1] - y[0])])
    y0 = np.array([2.0, 0.0])
    ref = solve_ivp(lambda t, y: np.asarray(vdp(t, jnp.asarray(y), None)), (0, 10.0), y0,
                    method="Radau", rtol=1e-10, atol=1e-12).y[:, -1]
    sol = odeflow.solve(vdp, jnp.asarray(y0), t0=0.0, t1=10.0, solver="ros2", rtol=1e-5,
                        atol=1e-7)
    # a 2(1) pair: the error estimate is first order, so tolerances stay moderate
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), ref, rtol=2e-2, atol=1e-3)
    assert int(sol.stats.num_jacobians) == int(sol.stats.num_steps)


def test_ros2_cg_gradient_flow_matches_closed_form():
    h = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 0.01]])
    w0 = np.array([1.0, -1.0, 2.0])
    res = odeflow.gradient_flow(lambda w: 0.5 * w @ jnp.asarray(h) @ w, jnp.asarray(w0),
                                solver=odeflow.solvers.ROS2(linear_solver="cg", krylov_rtol=1e-10),
                                rtol=1e-6, atol=1e-8, t1=3.0)
    np.testing.assert_allclose(np.asarray(res.params), expm(-h * 3.0) @ w0, rtol=1e-3)
    s = res.stats
    assert int(s.num_jacobians) == 0 and int(s.num_jvps) > 0  # matrix-free
    assert int(s.num_linear_solves) == 2 * int(s.num_steps)
