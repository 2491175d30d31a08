"""Work counts equal what a host-side counter sees the vector field being called."""

import jax
import jax.numpy as jnp
import pytest

import odeflow
from odeflow.solvers import NOT_COUNTED, solver_names

A = jnp.array([[-50.0, 1.0], [0.0, -0.5]])


def _counted_solve(name, **kwargs):
    calls = [0]

    def bump():
        calls[0] += 1

    def vf(t, y, args):
        jax.debug.callback(bump)
        return A @ y

    sol = odeflow.solve(vf, jnp.array([1.0, 1.0]), t0=0.0, t1=1.0, solver=name, **kwargs)
    jax.effects_barrier()
    return sol, calls[0]


@pytest.mark.parametrize("name", [n for n in solver_names() if n not in ("euler", "rk4")])
@pytest.mark.parametrize("dt0", [None, 1e-3])
def test_nfe_equals_calls(name, dt0):
    sol, calls = _counted_solve(name, rtol=1e-5, atol=1e-8, dt0=dt0)
    stats = sol.stats
    assert int(stats.nfe) == calls
    assert int(stats.num_steps) == int(stats.num_accepted) + int(stats.num_rejected)


def test_hand_counted_tsit5():
    # Tsit5: 7 stages, FSAL -> 6 new evaluations per step plus 1 at t0; a given dt0
    # and a constant step make 10 steps and no initial-step selection.
    sol = odeflow.solve(lambda t, y, a: -y, jnp.ones(2), t0=0.0, t1=1.0, solver="tsit5",
                        dt0=0.1, rtol=1e-3, atol=1e-6)
    steps = int(sol.stats.num_steps)
    assert int(sol.stats.nfe) == 1 + 6 * steps
    # Heun: 2 stages, not FSAL.
    sol = odeflow.solve(lambda t, y, a: -y, jnp.ones(2), t0=0.0, t1=1.0, solver="heun",
                        dt0=0.1, rtol=1e-3, atol=1e-6)
    assert int(sol.stats.nfe) == 2 * int(sol.stats.num_steps)
    # Euler with a fixed step: one evaluation per step, exactly t1 / dt0 steps.
    sol = odeflow.solve(lambda t, y, a: -y, jnp.ones(2), t0=0.0, t1=1.0, solver="euler", dt0=0.125)
    assert int(sol.stats.num_steps) == 8 and int(sol.stats.nfe) == 8
    # classical RK4: four evaluations per step
    sol = odeflow.solve(lambda t, y, a: -y, jnp.ones(2), t0=0.0, t1=1.0, solver="rk4", dt0=0.125)
    assert int(sol.stats.num_steps) == 8 and int(sol.stats.nfe) == 32


def test_implicit_counts_consistent():
    sol, calls = _counted_solve("kvaerno5", rtol=1e-6, atol=1e-9)
    s = sol.stats
    assert int(s.nfe) == calls
    assert int(s.num_jacobians) == int(s.num_steps) == int(s.num_factorizations)
    assert int(s.num_linear_solves) == int(s.num_newton_iters)
    # 6 implicit stages per step, at least one Newton iteration each
    assert int(s.num_newton_iters) >= 6 * int(s.num_steps)
    # NFE = Newton iterations + one evaluation with each linearisation + 2 (dt0)
    assert int(s.nfe) == int(s.num_newton_iters) + int(s.num_jacobians) + 2


@pytest.mark.parametrize("name", ["kvaerno3-gmres", "kvaerno5-gmres", "implicit-euler-gmres",
                                  "ros2-gmres", "ros2-cg", "kvaerno3-cg", "ptc", "ptc-gmres"])
def test_matrix_free_counts_equal_product_calls(name):
    """Every Jacobian-vector product a matrix-free solver reports is one call of the
    term's product, and no Jacobian is formed."""
    sym = jnp.array([[-50.0, 1.0], [1.0, -0.5]])
    products = [0]

    def bump():
        products[0] += 1

    def linearize(t, y, args):
        def jvp(v):
            jax.debug.callback(bump)
            return sym @ v
        return sym @ y, jvp

    sol = odeflow.solve(lambda t, y, a: sym @ y, jnp.array([1.0, 1.0]), t0=0.0, t1=1.0,
                        solver=name, rtol=1e-5, atol=1e-8, linearize=linearize)
    jax.effects_barrier()
    s = sol.stats
    assert int(s.num_jvps) == products[0] > 0
    assert int(s.num_jacobians) == int(s.num_factorizations) == 0
    if name.startswith("ros2"):
        assert int(s.num_linear_solves) == 2 * int(s.num_steps)
    elif name.startswith("ptc"):
        assert int(s.num_linear_solves) == int(s.num_steps)
    else:
        assert int(s.num_linear_solves) == int(s.num_newton_iters) > 0


def test_counts_per_sample_under_vmap():
    def run(lam):
        return odeflow.solve(lambda t, y, a: -lam * y, jnp.ones(2), t0=0.0, t1=1.0,
                             solver="kvaerno3", rtol=1e-6, atol=1e-9)

    lams = jnp.array([1.0, 100.0, 1000.0])
    batched = jax.vmap(run)(lams).stats
    for i, lam in enumerate(lams):
        single = run(lam).stats
        for field in ("nfe", "num_steps", "num_rejected", "num_newton_iters", "num_jacobians"):
            assert int(getattr(batched, field)[i]) == int(getattr(single, field))


def test_diffrax_instance_accepted_with_unknown_nfe():
    import diffrax

    sol = odeflow.solve(lambda t, y, a: -y, jnp.ones(2), t0=0.0, t1=1.0, solver=diffrax.Tsit5())
    assert int(sol.stats.nfe) == NOT_COUNTED
    assert int(sol.stats.num_steps) > 0
    assert jnp.allclose(sol.ys[-1], jnp.exp(-1.0), rtol=1e-5)


def test_stiff_solver_takes_fewer_steps_on_stiff_problem():
    big = jnp.array([[-1e4, 0.0], [0.0, -1.0]])
    run = lambda s: odeflow.solve(lambda t, y, a: big @ y, jnp.ones(2), t0=0.0, t1=10.0,
                                  solver=s, rtol=1e-4, atol=1e-7, max_steps=100_000)
    assert int(run("kvaerno5").stats.num_steps) * 20 < int(run("tsit5").stats.num_steps)
