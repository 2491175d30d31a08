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


# Hand counts, from each method's structure. Adaptive solves without dt0 add the 2
# evaluations of the initial step selection (Hairer, Norsett & Wanner II.4).
# Explicit: (new evaluations per step, FSAL: one evaluation at t0 reused as a stage).
EXPLICIT = {"tsit5": (6, 1), "dopri5": (6, 1), "dopri8": (13, 1), "bosh3": (3, 1), "heun": (2, 0),
            "midpoint": (2, 0)}
# ESDIRK: implicit stages per step, each at least one Newton iteration; one Jacobian
# and LU per step, and one evaluation with each linearisation.
ESDIRK = {"implicit-euler": 1, "kvaerno3": 3, "kvaerno5": 6}


def _stats(name, dt0=None):
    return odeflow.solve(lambda t, y, a: A @ y, jnp.array([1.0, 1.0]), t0=0.0, t1=1.0, solver=name,
                         rtol=1e-5, atol=1e-8, dt0=dt0).stats


@pytest.mark.parametrize("name", list(EXPLICIT))
def test_hand_counts_explicit(name):
    new, fsal = EXPLICIT[name]
    s = _stats(name)
    assert int(s.nfe) == 2 + fsal + new * int(s.num_steps)
    assert int(s.num_jacobians) == int(s.num_linear_solves) == 0


def test_hand_counts_fixed_step():
    # Euler: one evaluation per step, exactly t1 / dt0 steps; classical RK4: four
    for name, per_step in (("euler", 1), ("rk4", 4)):
        s = _stats(name, dt0=0.125)
        assert int(s.num_steps) == 8 and int(s.nfe) == 8 * per_step


@pytest.mark.parametrize("name", list(ESDIRK))
def test_hand_counts_esdirk(name):
    s = _stats(name)
    steps = int(s.num_steps)
    assert int(s.num_jacobians) == int(s.num_factorizations) == steps
    assert int(s.num_linear_solves) == int(s.num_newton_iters) >= ESDIRK[name] * steps
    assert int(s.nfe) == int(s.num_newton_iters) + int(s.num_jacobians) + 2


def test_hand_counts_rosenbrock_and_pseudo_transient():
    # ROS2: two stages, each one evaluation and one solve with the step's LU
    s = _stats("ros2")
    steps = int(s.num_steps)
    assert int(s.nfe) == 2 * steps + 2 and int(s.num_linear_solves) == 2 * steps
    assert int(s.num_jacobians) == int(s.num_factorizations) == steps
    # PTC: one Jacobian, LU and solve per step; two evaluations (with the
    # linearisation at the step's start, and the new point's residual for the SER
    # controller); its first step from one evaluation and one Jacobian-vector product
    s = _stats("ptc-dense")
    steps = int(s.num_steps)
    assert int(s.nfe) == 2 * steps + 1 and int(s.num_jvps) == 1
    assert int(s.num_jacobians) == int(s.num_factorizations) == int(s.num_linear_solves) == steps


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
            # the callback takes v, so it runs with the product (one without inputs
            # would also run once where a Krylov solve's transpose is traced)
            jax.debug.callback(lambda _: bump(), v)
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
