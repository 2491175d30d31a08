"""odeflow's solvers inside a plain diffrax.diffeqsolve: step_ts and jump_ts, events,
dense output and diffrax's adjoints, on problems with known solutions."""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from odeflow.solvers import get_solver

NAMES = ["tsit5", "kvaerno5", "kvaerno3-gmres", "ros2", "implicit-euler", "auto"]
TOL = {"ros2": 1e-5, "implicit-euler": 1e-3}


def forced(t, y, args):
    """Decay towards a forcing that jumps from 0 to 1 at t = 0.5."""
    return -4.0 * (y - jnp.where(t < 0.5, 0.0, 1.0))


def forced_exact(t, y0=1.0):
    before = y0 * np.exp(-4.0 * t)
    at_jump = y0 * np.exp(-2.0)
    return np.where(t < 0.5, before, 1.0 + (at_jump - 1.0) * np.exp(-4.0 * (t - 0.5)))


def _controller(name, **kwargs):
    tol = TOL.get(name, 1e-8)
    return dfx.PIDController(rtol=tol, atol=tol * 1e-2, **kwargs), tol


@pytest.mark.parametrize("name", NAMES)
def test_jump_ts_step_ts_save_points_and_dense_output(name):
    controller, tol = _controller(name, jump_ts=jnp.array([0.5]), step_ts=jnp.array([0.25, 0.75]))
    ts = jnp.linspace(0.1, 1.0, 7)
    sol = dfx.diffeqsolve(dfx.ODETerm(forced), get_solver(name), 0.0, 1.0, 0.01, jnp.asarray(1.0),
                          stepsize_controller=controller, saveat=dfx.SaveAt(ts=ts, dense=True),
                          max_steps=100_000)
    np.testing.assert_allclose(np.asarray(sol.ys), forced_exact(np.asarray(ts)), atol=30 * tol)
    np.testing.assert_allclose(float(sol.evaluate(0.3)), forced_exact(0.3), atol=30 * tol)


@pytest.mark.parametrize("name", NAMES)
def test_event_stops_at_the_crossing(name):
    """y = exp(-4 t) crosses 0.5 at t = ln(2) / 4."""
    controller, tol = _controller(name)
    event = dfx.Event(lambda t, y, args, **kw: y - 0.5, root_finder=optx.Newton(rtol=1e-10, atol=1e-10))
    sol = dfx.diffeqsolve(dfx.ODETerm(lambda t, y, a: -4.0 * y), get_solver(name), 0.0, 1.0, 0.01,
                          jnp.asarray(1.0), stepsize_controller=controller, event=event)
    assert sol.result == dfx.RESULTS.event_occurred
    assert abs(float(sol.ts[-1]) - np.log(2.0) / 4) < 50 * tol


@pytest.mark.parametrize("name", NAMES)
def test_diffrax_adjoints_agree(name):
    """d y(1) / d rate by recursive checkpointing, direct, backsolve and forward mode
    against the exact -exp(-rate)."""
    controller, tol = _controller(name)

    def y1(rate, adjoint):
        return dfx.diffeqsolve(dfx.ODETerm(lambda t, y, k: -k * y), get_solver(name), 0.0, 1.0,
                               0.01, jnp.asarray(1.0), args=rate, stepsize_controller=controller,
                               adjoint=adjoint, max_steps=100_000).ys[-1]

    exact = -np.exp(-2.0)
    for adjoint in (dfx.RecursiveCheckpointAdjoint(), dfx.DirectAdjoint(), dfx.BacksolveAdjoint()):
        assert abs(float(jax.grad(y1)(2.0, adjoint)) - exact) < 100 * tol, adjoint
    assert abs(float(jax.jacfwd(y1)(2.0, dfx.ForwardMode())) - exact) < 100 * tol
