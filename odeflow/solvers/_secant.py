"""A preconditioner recycled from earlier Krylov solves: limited-memory quasi-Newton
(L-BFGS) updates built from the directions and products conjugate gradients has
already computed (Morales & Nocedal, SIAM J. Optim. 10, 2000).

Implicit and Rosenbrock steps solve a sequence of systems (I - c J) x = b whose
matrices change slowly from step to step. Each CG iteration yields a pair
(s, y = (I - c J) s) at no extra cost; the last `m` pairs, kept in the solver state,
define an L-BFGS approximation H ≈ (I - c' J)⁻¹ that preconditions the next solve,
even at a different shift c' (the pair is rescaled exactly: y' = s + (c'/c)(y - s)).
H is symmetric positive definite whenever it is built only from pairs with sᵀy > 0,
so preconditioned CG stays valid; pairs that violate it are skipped.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


class SecantMemory(eqx.Module):
    """The last `m` Krylov directions `s`, their products `y = (I - c J) s` and the
    shifts `c`, in a ring buffer: of the `count` pairs written so far, the k-th
    (from 0) sits in row `k % m` until overwritten."""

    s: Float[Array, "m n"]
    y: Float[Array, "m n"]
    shift: Float[Array, " m"]
    count: Int[Array, ""]

    @classmethod
    def empty(cls, size: int, n: int, dtype) -> "SecantMemory":
        zeros = jnp.zeros((size, n), dtype)
        return cls(zeros, zeros, jnp.zeros((size,), dtype), jnp.zeros((), jnp.int32))

    def remember(self, s, y, shift, keep=True) -> "SecantMemory":
        """The memory with the pair `(s, y)` at shift `shift` added (if `keep`)."""
        keep = jnp.asarray(keep)
        row = self.count % self.s.shape[0]
        put = lambda buffer, new: buffer.at[row].set(jnp.where(keep, new, buffer[row]))
        return SecantMemory(
            put(self.s, s),
            put(self.y, y),
            put(self.shift, jnp.asarray(shift, self.shift.dtype)),
            self.count + keep.astype(jnp.int32),
        )

    def inverse(self, shift):
        """`v -> H v` with H the L-BFGS approximation of (I - shift J)⁻¹ from the
        stored pairs (the identity while none is usable), in the compact form of Byrd,
        Nocedal & Schnabel (Math. Prog. 63, 1994): two products with the stored
        m x n blocks and m x m triangular solves per application."""
        m = self.s.shape[0]
        order = (self.count + jnp.arange(m)) % m  # oldest first
        s, y_old, c_old = self.s[order], self.y[order], self.shift[order]
        ratio = jnp.where(c_old != 0, shift / jnp.where(c_old != 0, c_old, 1.0), 0.0)
        y = s + ratio[:, None] * (y_old - s)  # the same directions under the new shift
        sy = jnp.sum(s * y, axis=1)
        yy = jnp.sum(y * y, axis=1)
        written = jnp.arange(m) >= m - self.count
        usable = written & (sy > 1e-12 * jnp.sqrt(yy * jnp.sum(s * s, axis=1)))
        s = jnp.where(usable[:, None], s, 0.0)
        y = jnp.where(usable[:, None], y, 0.0)
        newest = m - 1 - jnp.argmax(usable[::-1])
        gamma = jnp.where(usable.any(), sy[newest] / jnp.where(usable.any(), yy[newest], 1.0), 1.0)
        sty = s @ y.T
        diag = jnp.where(usable, jnp.diagonal(sty), 0.0)
        r = jnp.triu(sty, 1) + jnp.diag(jnp.where(usable, diag, 1.0))
        inner = jnp.diag(diag) + gamma * (y @ y.T)
        solve_r = lambda b: jax.scipy.linalg.solve_triangular(r, b, lower=False)
        solve_rt = lambda b: jax.scipy.linalg.solve_triangular(r, b, trans="T", lower=False)

        def apply(v):
            a, b = s @ v, gamma * (y @ v)
            r_inv_a = solve_r(a)
            p1 = solve_rt(inner @ r_inv_a - b)
            return gamma * v + s.T @ p1 - gamma * (y.T @ r_inv_a)

        return apply
