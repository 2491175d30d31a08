"""Automatic stiff/non-stiff switching: agrees with references, switches when and
only when stiffness demands, both ways, and reports it."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import odeflow
from odeflow.problems import robertson


def _radau(vf, y0, t1):
    return solve_ivp(lambda t, y: np.asarray(vf(t, jnp.asarray(y), None)), (0, t1), y0,
                     method="Radau", rtol=1e-10, atol=1e-13).y[:, -1]


def test_non_stiff_problem_is_tsit5_exactly():
    """No stiffness, no switch: the same steps and solution as Tsit5."""
    osc = lambda t, y, a: jnp.stack([y[1], -y[0]])
    kwargs = dict(t0=0.0, t1=10.0, rtol=1e-8, atol=1e-10)
    auto = odeflow.solve(osc, jnp.array([1.0, 0.0]), solver="auto", **kwargs)
    tsit5 = odeflow.solve(osc, jnp.array([1.0, 0.0]), solver="tsit5", **kwargs)
    assert int(auto.stats.num_switches) == 0 and int(auto.stats.num_stiff_steps) == 0
    assert int(auto.stats.num_steps) == int(tsit5.stats.num_steps)
    assert int(auto.stats.nfe) == int(tsit5.stats.nfe)
    np.testing.assert_allclose(np.asarray(auto.ys[-1]), np.asarray(tsit5.ys[-1]), rtol=1e-13)


def test_robertson_switches_to_implicit_and_matches_radau():
    y0 = np.array([1.0, 0.0, 0.0])
    ref = _radau(robertson, y0, 1e4)
    sol = odeflow.solve(robertson, jnp.asarray(y0), t0=0.0, t1=1e4, solver="auto", rtol=1e-7,
                        atol=1e-11, max_steps=100_000)
    err = np.abs(np.asarray(sol.ys[-1]) - ref) / (np.abs(ref) + 1e-10)
    assert err.max() < 1e-4, err
    s = sol.stats
    assert int(s.num_switches) == 1  # explicit for the transient, implicit after it
    assert int(s.num_stiff_steps) > 0.8 * int(s.num_steps)
    tsit5 = odeflow.solve(robertson, jnp.asarray(y0), t0=0.0, t1=1e4, solver="tsit5", rtol=1e-7,
                          atol=1e-11, max_steps=20_000, throw=False)
    assert int(tsit5.stats.num_steps) > 10 * int(s.num_steps)


def test_switches_back_when_stiffness_decays():
    """Stiffness 1e4 e^{-3t} + 1 fades: explicit, implicit, explicit again."""
    vf = lambda t, y, a: -(1e4 * jnp.exp(-3.0 * t) + 1.0) * (y - jnp.cos(t))
    ref = _radau(vf, np.array([2.0]), 20.0)
    sol = odeflow.solve(vf, jnp.array([2.0]), t0=0.0, t1=20.0, solver="auto", rtol=1e-7,
                        atol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), ref, rtol=1e-5)
    assert int(sol.stats.num_switches) == 2
    assert 0 < int(sol.stats.num_stiff_steps) < int(sol.stats.num_steps)


def test_is_the_default_everywhere():
    import inspect

    assert inspect.signature(odeflow.solve).parameters["solver"].default == "auto"
    assert inspect.signature(odeflow.gradient_flow).parameters["solver"].default == "auto"
    from odeflow.cli._main import _parser

    args = _parser().parse_args(["compare"])
    assert "auto" in args.methods.split(",")


@pytest.mark.parametrize("size, kind", [(3, odeflow.solvers.Dense), (150, odeflow.solvers.GMRES)])
def test_implicit_method_by_size(size, kind):
    assert isinstance(odeflow.solvers.AutoSwitch().implicit.linear_solver.choose(size), kind)
