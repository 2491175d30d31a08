import jax
import jax.numpy as jnp
import numpy as np

from odeflow.diagnostics import hessian_spectrum, hvp, stiffness_check


def test_hvp_matches_dense_hessian():
    loss = lambda p: jnp.sum(jnp.sin(p) * p**2)
    p, v = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.0, 0.5, -0.2])
    np.testing.assert_allclose(hvp(loss, p, v), jax.hessian(loss)(p) @ v, rtol=1e-12)


def test_lanczos_finds_extreme_eigenvalues():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(40, 40)))
    eig = np.geomspace(1e-3, 1e3, 40)
    h = jnp.asarray(q @ np.diag(eig) @ q.T)
    s = hessian_spectrum(lambda p: 0.5 * p @ h @ p, jnp.zeros(40), jax.random.key(1), iters=40)
    assert float(s.largest) == np.float64(1e3).__round__(6) or abs(float(s.largest) - 1e3) < 1e-6
    assert abs(float(s.smallest) - 1e-3) < 1e-6
    assert abs(float(s.stiffness_ratio) - 1e6) / 1e6 < 1e-4


def test_stiffness_check_separates_stiff_and_nonstiff():
    stiff = lambda p: 0.5 * (1e3 * p[0] ** 2 + 1e-1 * p[1] ** 2)
    mild = lambda p: 0.5 * (p[0] ** 2 + 0.5 * p[1] ** 2)
    a = stiffness_check(stiff, jnp.ones(2), t1=20.0)
    b = stiffness_check(mild, jnp.ones(2), t1=20.0)
    assert bool(a.stiff) and not bool(b.stiff)
    assert float(a.step_ratio) > 3 * float(b.step_ratio)
    assert abs(float(a.largest_eigenvalue) - 1e3) < 1e-6


def test_stiffness_profile_along_trajectory():
    """Per point of a stacked trajectory, the same as a single-point estimate."""
    loss = lambda p: 0.5 * (1e2 * p[0] ** 2 + p[1] ** 2) + 0.25 * p[1] ** 4
    points = jnp.array([[1.0, 2.0], [0.5, 1.0], [0.0, 0.0]])
    from odeflow.diagnostics import stiffness_profile

    prof = stiffness_profile(loss, points, jax.random.key(0), iters=2)
    for i, p in enumerate(points):
        exact = np.linalg.eigvalsh(np.asarray(jax.hessian(loss)(p)))
        np.testing.assert_allclose([prof.smallest[i], prof.largest[i]], exact, rtol=1e-8)
