"""Work reused across steps: the recycled L-BFGS preconditioner of CG solves
(`CG(memory=m)`) and the stale dense Jacobian of Rosenbrock-W steps
(`Dense(jacobian_every=k)`)."""

import math

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

import odeflow
from odeflow.solvers import CG, ROS2, Dense, PseudoTransient
from odeflow.solvers._krylov import cg
from odeflow.solvers._secant import SecantMemory
from odeflow.problems import robertson


def _spd(n, low, high, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.logspace(np.log10(low), np.log10(high), n)) @ q.T


def _two_loop(pairs, v):
    """Textbook L-BFGS two-loop recursion (Nocedal & Wright, Algorithm 7.4)."""
    alphas = []
    q = v.copy()
    for s, y in reversed(pairs):
        a = (s @ q) / (y @ s)
        q -= a * y
        alphas.append(a)
    s, y = pairs[-1]
    z = (s @ y) / (y @ y) * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        z += s * (a - (y @ z) / (y @ s))
    return z


def test_secant_inverse_is_lbfgs_on_the_last_pairs():
    rng = np.random.default_rng(1)
    n, m = 12, 4
    jac = -_spd(n, 0.1, 10.0)
    memory = SecantMemory.empty(m, n, jnp.float64)
    assert np.array_equal(memory.inverse(0.5)(jnp.ones(n)), np.ones(n))  # nothing stored
    stored = []
    for k in range(7):  # more pairs than the memory holds: the ring keeps the last 4
        s, c = rng.normal(size=n), 0.2 * (k + 1)
        memory = memory.remember(s, s - c * jac @ s, c)
        stored.append(s)
    memory = memory.remember(rng.normal(size=n), rng.normal(size=n), 1.0, keep=False)
    assert int(memory.count) == 7
    shift = 0.7  # pairs rescaled to the new shift: y = (I - 0.7 J) s
    pairs = [(s, s - shift * jac @ s) for s in stored[-m:]]
    v = rng.normal(size=n)
    np.testing.assert_allclose(memory.inverse(shift)(jnp.asarray(v)), _two_loop(pairs, v),
                               rtol=1e-10)
    s, y = pairs[-1]  # the secant condition on the newest pair
    np.testing.assert_allclose(memory.inverse(shift)(jnp.asarray(y)), s, rtol=1e-10)


def test_cg_directions_make_the_exact_inverse():
    """CG's directions are conjugate, so L-BFGS from all n of them is W⁻¹ (quadratic
    termination), and a solve preconditioned by it takes one product."""
    n = 6
    w = _spd(n, 1.0, 10.0)  # W = I - c J with c = 1
    b = jnp.asarray(np.random.default_rng(2).normal(size=n))
    memory = SecantMemory.empty(n, n, jnp.float64)
    observe = lambda mem, p, ap, ok: mem.remember(p, ap, 1.0, ok)
    x, used, converged, memory = cg(lambda v: jnp.asarray(w) @ v, b, rtol=1e-9, max_iters=50,
                                    observe=observe, observed=memory)
    assert bool(converged) and int(memory.count) == int(used) == n
    np.testing.assert_allclose(x, np.linalg.solve(w, b), rtol=1e-8)
    inverse = memory.inverse(1.0)
    np.testing.assert_allclose(jax.vmap(inverse)(jnp.eye(n)), np.linalg.inv(w), atol=1e-8)
    b2 = jnp.asarray(np.random.default_rng(3).normal(size=n))
    x2, used2, converged2, _ = cg(lambda v: jnp.asarray(w) @ v, b2, rtol=1e-8, max_iters=50,
                                  precondition=inverse)
    assert bool(converged2) and int(used2) == 1
    np.testing.assert_allclose(x2, np.linalg.solve(w, b2), rtol=1e-7)


def _quadratic_flow(solver, **kwargs):
    h = _spd(40, 1e-2, 1e3)
    w0 = np.random.default_rng(4).normal(size=40)
    products = [0]

    def bump():
        products[0] += 1

    def linearize(t, w, args):
        def jvp(v):
            jax.debug.callback(lambda _: bump(), v)  # runs with the product (see test_counts)
            return -jnp.asarray(h) @ v
        return -jnp.asarray(h) @ w, jvp

    sol = odeflow.solve(lambda t, w, a: -jnp.asarray(h) @ w, jnp.asarray(w0), t0=0.0,
                        solver=solver, linearize=linearize, **kwargs)
    jax.effects_barrier()
    return sol, products[0], h, w0


@pytest.mark.parametrize("memory", [0, 20])
def test_ros2_cg_with_memory_follows_the_flow(memory):
    solver = ROS2(linear_solver=CG(rtol=1e-6, max_iters=100, memory=memory))
    sol, products, h, w0 = _quadratic_flow(solver, t1=2.0, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), expm(-2.0 * h) @ w0, atol=2e-4)
    assert int(sol.stats.num_jvps) == products  # the preconditioner costs no products
    assert int(sol.stats.num_linear_solves) == 2 * int(sol.stats.num_steps)


def test_recycled_preconditioner_saves_products():
    """On an ill-conditioned quadratic (condition number 1e5) the recycled L-BFGS
    preconditioner cuts the products of pseudo-transient continuation and of ROS2."""
    ptc = lambda m: PseudoTransient(linear_solver=CG(rtol=1e-4, max_iters=100, memory=m))
    counts = []
    for m in (0, 20):
        sol, products, _, _ = _quadratic_flow(ptc(m), t1=1e30, dt0=1e-2, rtol=1e-10, atol=1e-12)
        assert bool(sol.success) and float(jnp.abs(sol.ys[-1]).max()) < 1e-8
        assert int(sol.stats.num_jvps) == products
        counts.append(products)
    assert counts[1] < 0.8 * counts[0], counts
    ros2 = lambda m: ROS2(linear_solver=CG(rtol=1e-4, max_iters=100, memory=m))
    plain, recycled = (_quadratic_flow(ros2(m), t1=20.0, rtol=1e-4, atol=1e-6)[1] for m in (0, 20))
    assert recycled < 0.9 * plain, (plain, recycled)


def test_stale_jacobian_on_robertson_against_radau():
    y0 = np.array([1.0, 0.0, 0.0])
    ref = solve_ivp(lambda t, y: np.asarray(robertson(t, jnp.asarray(y), None)), (0, 100.0), y0,
                    method="Radau", rtol=1e-10, atol=1e-14).y[:, -1]
    sol = odeflow.solve(robertson, jnp.asarray(y0), t0=0.0, t1=100.0,
                        solver=ROS2(linear_solver=Dense(jacobian_every=5)), rtol=1e-6, atol=1e-11, max_steps=200_000)
    err = np.abs(np.asarray(sol.ys[-1]) - ref) / (np.abs(ref) + 1e-10)
    assert err.max() < 1e-3, err
    s = sol.stats
    # a Jacobian at most every 5 accepted steps, plus one per retried stale-free attempt
    assert math.ceil(int(s.num_accepted) / 5) <= int(s.num_jacobians)
    assert int(s.num_jacobians) <= math.ceil(int(s.num_accepted) / 5) + int(s.num_rejected)
    assert int(s.num_factorizations) == int(s.num_steps)


@pytest.mark.parametrize("every", [1, 3, 4])
def test_stale_jacobian_hand_count_and_order(every):
    """Fixed steps: exactly ceil(steps / every) Jacobians, and second order on a
    nonlinear problem although the Jacobian is up to `every - 1` steps old (a
    W-method)."""
    mu = 2.0
    vdp = lambda t, y, a: jnp.stack([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])
    y0 = np.array([2.0, 0.0])
    ref = solve_ivp(lambda t, y: np.asarray(vdp(t, jnp.asarray(y), None)), (0, 1.0), y0,
                    method="Radau", rtol=1e-12, atol=1e-14).y[:, -1]
    steps, errors = [32, 64, 128], []
    for num in steps:
        sol = odeflow.solve(vdp, jnp.asarray(y0), t0=0.0, t1=1.0, solver=ROS2(linear_solver=Dense(jacobian_every=every)),
                            dt0=1.0 / num, controller=dfx.ConstantStepSize())
        assert int(sol.stats.num_steps) == num
        assert int(sol.stats.num_jacobians) == math.ceil(num / every)
        errors.append(float(np.abs(np.asarray(sol.ys[-1]) - ref).max()))
    slope = -np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.3), (errors, slope)


def test_reuse_options_are_checked():
    with pytest.raises(ValueError, match="memory"):
        CG(memory=-1)
    with pytest.raises(ValueError, match="jacobian_every"):
        Dense(jacobian_every=0)
    with pytest.raises(ValueError, match="max_iters"):
        PseudoTransient(linear_solver=CG(max_iters=0))
    with pytest.raises(ValueError, match="unknown linear_solver"):
        ROS2(linear_solver="qr")
