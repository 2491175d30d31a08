"""Krylov solvers that report their work: conjugate gradients and GMRES, matrix-free
linear solves on Jacobian- (Hessian-) vector products."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cg(matvec, b, *, rtol: float, max_iters: int, precondition=None, observe=None,
       observed=None):
    """Solve A x = b for symmetric A by (preconditioned) conjugate gradients from x = 0.

    Stops when ||r|| <= rtol ||b||, after `max_iters` products, or on a direction of
    non-positive curvature (pᵀAp <= 0), returning the iterate reached so far or, if
    that happens at once, `b` itself (truncated CG as in Hessian-free optimisation;
    Steihaug 1983, Martens 2010).

    `precondition(r)` applies a symmetric positive definite M ≈ A⁻¹. Every direction
    is passed on as `observed = observe(observed, p, A p, positive)` (e.g. into a
    `SecantMemory`, which keeps those of positive curvature). Returns `(x, matvecs, converged, observed)`.
    """
    precondition = (lambda r: r) if precondition is None else precondition
    tol2 = (rtol * jnp.linalg.norm(b)) ** 2

    def cond(carry):
        _, _, _, _, rr, it, stop, _ = carry
        return (rr > tol2) & (it < max_iters) & ~stop

    def body(carry):
        x, r, p, rz, rr, it, _, observed = carry
        ap = matvec(p)
        curvature = p @ ap
        bad = ~(curvature > 0)
        alpha = rz / jnp.where(bad, 1.0, curvature)
        x_new = x + alpha * p
        r_new = r - alpha * ap
        z_new = precondition(r_new)
        rz_new = r_new @ z_new
        p_new = z_new + (rz_new / rz) * p
        keep = lambda new, old: jnp.where(bad, old, new)
        x_out = jnp.where(bad & (it == 0), b, keep(x_new, x))
        if observe is not None:
            observed = observe(observed, p, ap, ~bad)
        return (x_out, keep(r_new, r), keep(p_new, p), keep(rz_new, rz),
                keep(r_new @ r_new, rr), it + 1, bad, observed)

    zero = jnp.zeros_like(b)
    z = precondition(b)
    init = (zero, b, z, b @ z, b @ b, jnp.zeros((), jnp.int32), jnp.array(False), observed)
    x, _, _, _, rr, iters, stop, observed = jax.lax.while_loop(cond, body, init)
    return x, iters, (rr <= tol2) & ~stop, observed


def gmres(matvec, b, *, rtol: float, max_iters: int):
    """Solve A x = b by GMRES from x = 0, without restarts (Saad & Schultz 1986).

    Arnoldi with classical Gram-Schmidt applied twice (numerically as good as modified
    Gram-Schmidt, and vectorised), Givens rotations for the least-squares residual.
    Stops when ||r|| <= rtol ||b|| or after `max_iters` products (the Krylov
    dimension). Any A; for a Newton iteration the outer loop does the restarting.
    Returns `(x, matvecs, converged)`.
    """
    m = max_iters
    n = b.shape[0]
    dtype = b.dtype
    beta = jnp.linalg.norm(b)
    tol = rtol * beta
    basis = jnp.zeros((m + 1, n), dtype).at[0].set(b / jnp.where(beta > 0, beta, 1.0))
    hess = jnp.zeros((m + 1, m), dtype)
    cs = jnp.zeros((m,), dtype)
    sn = jnp.zeros((m,), dtype)
    g = jnp.zeros((m + 1,), dtype).at[0].set(beta)

    def cond(carry):
        _, _, _, _, g, j, breakdown = carry
        return (j < m) & (jnp.abs(g[j]) > tol) & ~breakdown

    def body(carry):
        basis, hess, cs, sn, g, j, _ = carry
        w = matvec(basis[j])
        mask = (jnp.arange(m + 1) <= j).astype(dtype)
        h = (basis @ w) * mask
        w = w - basis.T @ h
        h2 = (basis @ w) * mask  # second pass of classical Gram-Schmidt
        w = w - basis.T @ h2
        h = h + h2
        h_next = jnp.linalg.norm(w)
        breakdown = ~(h_next > 1e-14 * jnp.linalg.norm(h))  # lucky: exact solution
        basis = basis.at[j + 1].set(w / jnp.where(breakdown, 1.0, h_next))

        def rotate(i, col):  # earlier Givens rotations on the new column
            a, c = col[i], col[i + 1]
            new_a = cs[i] * a + sn[i] * c
            new_c = -sn[i] * a + cs[i] * c
            live = i < j
            return col.at[i].set(jnp.where(live, new_a, a)).at[i + 1].set(
                jnp.where(live, new_c, c)
            )

        col = jax.lax.fori_loop(0, m, rotate, h.at[j + 1].set(h_next))
        r = jnp.hypot(col[j], col[j + 1])
        c = jnp.where(r > 0, col[j] / jnp.where(r > 0, r, 1.0), 1.0)
        s = jnp.where(r > 0, col[j + 1] / jnp.where(r > 0, r, 1.0), 0.0)
        col = col.at[j].set(r).at[j + 1].set(0.0)
        hess = hess.at[:, j].set(col)
        g = g.at[j + 1].set(-s * g[j]).at[j].set(c * g[j])
        return basis, hess, cs.at[j].set(c), sn.at[j].set(s), g, j + 1, breakdown

    init = (basis, hess, cs, sn, g, jnp.zeros((), jnp.int32), beta == 0)
    basis, hess, _, _, g, k, _ = jax.lax.while_loop(cond, body, init)
    # solve the k x k upper-triangular system; unused columns become the identity
    live = jnp.arange(m) < k
    r = jnp.where(live[None, :] & live[:, None], hess[:m], jnp.eye(m, dtype=dtype))
    y = jax.scipy.linalg.solve_triangular(r, jnp.where(live, g[:m], 0.0), lower=False)
    x = basis[:m].T @ y
    return x, k, jnp.abs(g[k]) <= tol
