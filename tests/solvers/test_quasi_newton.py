"""Pseudo-transient continuation with limited-memory secant curvature
(`SecantPseudoTransient`, "ptc-lbfgs"): the compact damped inverse against textbook
BFGS, the step against its definition, work counts, and minima reached on problems
with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import odeflow
from odeflow.solvers import SecantPseudoTransient
from odeflow.solvers._quasi_newton import CurvaturePairs


def _spd(n, low, high, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    return q @ np.diag(np.logspace(np.log10(low), np.log10(high), n)) @ q.T


def _bfgs(pairs):
    """Textbook BFGS updates of B0 = σI, σ = yᵀy / sᵀy of the newest pair
    (Nocedal & Wright, eq. 6.19 and 7.20)."""
    s, y = pairs[-1]
    b = (y @ y) / (s @ y) * np.eye(len(s))
    for s, y in pairs:
        bs = b @ s
        b = b - np.outer(bs, bs) / (s @ bs) + np.outer(y, y) / (y @ s)
    return b


@pytest.mark.parametrize("stored", [1, 3, 5])
def test_damped_inverse_is_that_of_textbook_bfgs(stored):
    """(B + λI)⁻¹ v from the compact form equals the dense solve with B from the
    last `memory` pairs by BFGS updates: memory partly filled, full, wrapped around."""
    n, memory = 8, 3
    a = _spd(n, 0.1, 100.0)
    rng = np.random.default_rng(1)
    pairs = [(s, a @ s) for s in rng.normal(size=(stored, n))]
    mem = CurvaturePairs.empty(memory, n, jnp.float64)
    for s, y in pairs:
        mem = mem.remember(jnp.asarray(s), jnp.asarray(y))
    # the Gram matrices kept up to date row by row equal those of the stored pairs
    np.testing.assert_allclose(mem.sy, mem.s @ mem.y.T, rtol=1e-12)
    np.testing.assert_allclose(mem.ss, mem.s @ mem.s.T, rtol=1e-12)
    np.testing.assert_allclose(mem.yy, mem.y @ mem.y.T, rtol=1e-12)
    b = _bfgs(pairs[-memory:])
    v = rng.normal(size=n)
    for damping in (1e-6, 0.3, 10.0, 1e6):
        expected = np.linalg.solve(b + damping * np.eye(n), v)
        got = np.asarray(mem.damped_inverse(damping)(jnp.asarray(v)))
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_empty_memory_is_an_explicit_euler_step():
    v = jnp.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(CurvaturePairs.empty(4, 3, jnp.float64).damped_inverse(0.5)(v), v / 0.5)
    kept = CurvaturePairs.empty(4, 3, jnp.float64).remember(v, v, keep=False)
    assert int(kept.count) == 0 and not jnp.any(kept.s)


def test_a_pair_not_kept_leaves_the_memory_as_it_was():
    """A skipped pair (even a non-finite one) changes no buffer, Gram matrix or count,
    with the memory partly filled and full."""
    rng = np.random.default_rng(2)
    for stored in (2, 5):
        mem = CurvaturePairs.empty(3, 4, jnp.float64)
        for s in rng.normal(size=(stored, 4)):
            mem = mem.remember(jnp.asarray(s), jnp.asarray(2 * s))
        bad = jnp.full((4,), jnp.nan)
        after = mem.remember(bad, bad, keep=jnp.array(False))
        for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(mem)):
            np.testing.assert_array_equal(a, b)


class _Wrap:
    """diffeqsolve's wrapper of the term, as the solvers see it (a scalar control)."""

    def __init__(self, term):
        self.term, self.direction = term, 1

    def contr(self, t0, t1):
        return t1 - t0

    def vf(self, t, y, args):
        return self.term.vector_field(t, y, args)

    def vf_prod(self, t, y, args, control):
        return self.term.vector_field(t, y, args) * control


def test_step_is_the_damped_quasi_newton_step_and_keeps_curvature_pairs():
    """One step from a known memory solves (B + I/h) δ = f(y0), stores its own pair
    (δ, f(y0) - f(y1)) and hands f(y1) to the next step; a pair without positive
    curvature (an ascent field) is not stored."""
    n = 6
    a = _spd(n, 1.0, 50.0)
    field = lambda t, y, args: -jnp.asarray(a) @ y  # gradient flow of ½ yᵀAy
    solver = SecantPseudoTransient(memory=4)
    y0 = jnp.asarray(np.random.default_rng(2).normal(size=n))
    state = solver.init(None, 0.0, 1.0, y0, None)
    out = solver.attempt(_Wrap(odeflow.solvers._linearize.LinearizedTerm(field)), 0.0, 0.1, y0,
                         None, state, False)
    np.testing.assert_allclose(out.y1, y0 + 0.1 * field(0, y0, None))  # B = 0: Euler
    memory, f1, fresh = out.solver_state
    assert int(memory.count) == 1 and not bool(fresh)
    np.testing.assert_allclose(f1, field(0, out.y1, None))
    assert int(out.work.nfe) == 2  # the first step evaluates f(y0) as well

    second = solver.attempt(_Wrap(odeflow.solvers._linearize.LinearizedTerm(field)), 0.1, 2.1,
                            out.y1, None, out.solver_state, False)
    s, y = np.asarray(out.y1 - y0), np.asarray(a @ (out.y1 - y0))
    expected = np.linalg.solve(_bfgs([(s, y)]) + np.eye(n) / 2.0, np.asarray(f1))
    np.testing.assert_allclose(second.y1 - out.y1, expected, rtol=1e-10)
    assert int(second.work.nfe) == 1 and int(second.work.num_linear_solves) == 1

    ascent = SecantPseudoTransient(memory=4).attempt(
        _Wrap(odeflow.solvers._linearize.LinearizedTerm(lambda t, y, args: jnp.asarray(a) @ y)),
        0.0, 0.1, y0, None, state, False)
    assert int(ascent.solver_state[0].count) == 0


def test_reaches_the_minimum_of_an_ill_conditioned_quadratic_with_one_evaluation_per_step():
    n = 20
    a = jnp.asarray(_spd(n, 1e-1, 1e2, seed=3))
    x_star = jnp.linspace(-1.0, 1.0, n)
    field = lambda t, x, args: -a @ (x - x_star)
    sol = odeflow.solve(field, jnp.zeros(n), t0=0.0, t1=1e30, solver="ptc-lbfgs", rtol=1e-12,
                        atol=1e-12, max_steps=2000)
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), np.asarray(x_star), atol=1e-8)
    s = sol.stats
    # one evaluation and one small solve per step, one more on the first attempt,
    # and the automatic first step's evaluation and Jacobian-vector product
    first_attempts = 1 + int(s.num_rejected > 0)
    assert int(s.num_steps) + 2 <= int(s.nfe) <= int(s.num_steps) + 1 + first_attempts
    assert int(s.num_jvps) == 1 and int(s.num_jacobians) == 0
    assert int(s.num_linear_solves) == int(s.num_steps)
    # explicit Euler at its stability limit needs ~1e3 · log(1e12) steps
    assert int(s.num_steps) < 1000


def test_gradient_flow_reaches_rosenbrock_minimum_like_lbfgs():
    """A problem odeflow was not designed on: the Rosenbrock function from the
    classical start (-1.2, 1). Both reach the minimum (1, 1); the secant steps take
    one gradient each, and not many more of them than L-BFGS's line search spends."""
    rosen = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    x0 = jnp.array([-1.2, 1.0])
    ours = odeflow.gradient_flow(rosen, x0, target_loss=1e-10, solver="ptc-lbfgs")
    assert ours.reached_target
    np.testing.assert_allclose(np.asarray(ours.params), [1.0, 1.0], atol=1e-4)
    lbfgs = odeflow.optimize(rosen, x0, optax.lbfgs(), target_loss=1e-10)
    assert int(ours.stats.nfe) <= int(ours.stats.num_steps) + 3
    assert int(ours.stats.nfe) < 4 * int(lbfgs.stats.nfe)


def test_seeds_under_vmap_equal_single_runs():
    a = jnp.asarray(_spd(5, 0.1, 10.0, seed=4))
    loss = lambda x: 0.5 * (x - 1.0) @ a @ (x - 1.0) + 0.1 * jnp.sum(x**4)
    starts = jnp.stack([jnp.full(5, 3.0), jnp.linspace(-2.0, 2.0, 5)])
    run = lambda x0: odeflow.gradient_flow(loss, x0, target_loss=0.5, solver="ptc-lbfgs")
    batched = jax.vmap(run)(starts)
    for i in range(2):
        single = run(starts[i])
        np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-10)
        assert int(batched.stats.num_steps[i]) == int(single.stats.num_steps)


def test_memory_must_be_positive():
    with pytest.raises(ValueError, match="memory"):
        SecantPseudoTransient(memory=0)
