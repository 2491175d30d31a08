import jax.numpy as jnp
import pytest

import odeflow

vf = lambda t, y, a: -y


def test_unknown_solver_lists_valid_names():
    with pytest.raises(ValueError, match="tsit5"):
        odeflow.solve(vf, jnp.ones(2), t0=0.0, t1=1.0, solver="rk45")


@pytest.mark.parametrize("kwargs, match", [
    (dict(rtol=-1e-3), "rtol"), (dict(atol=0.0), "atol"), (dict(t0=1.0, t1=0.0), "t1"),
    (dict(max_steps=0), "max_steps"), (dict(solver="euler"), "dt0"),
])
def test_bad_arguments(kwargs, match):
    args = dict(t0=0.0, t1=1.0, solver="tsit5") | kwargs
    with pytest.raises(ValueError, match=match):
        odeflow.solve(vf, jnp.ones(2), **args)


def test_bad_initial_state():
    with pytest.raises(ValueError, match="NaN"):
        odeflow.solve(vf, jnp.array([1.0, jnp.nan]), t0=0.0, t1=1.0)
    with pytest.raises(TypeError, match="floating"):
        odeflow.solve(vf, jnp.array([1, 2]), t0=0.0, t1=1.0)


def test_max_steps_partial_result():
    sol = odeflow.solve(vf, jnp.ones(2), t0=0.0, t1=100.0, solver="tsit5", max_steps=3,
                        throw=False, rtol=1e-10, atol=1e-12)
    assert not bool(sol.success)
    assert int(sol.stats.num_steps) == 3 and int(sol.stats.nfe) > 0
    with pytest.raises(Exception):
        odeflow.solve(vf, jnp.ones(2), t0=0.0, t1=100.0, solver="tsit5", max_steps=3,
                      rtol=1e-10, atol=1e-12)
