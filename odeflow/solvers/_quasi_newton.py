"""Pseudo-transient continuation with limited-memory secant curvature: a W-method
whose Jacobian is an L-BFGS matrix built from the field's own differences along the
steps, so that a step costs one evaluation of the field and no Jacobian products.

A pseudo-transient step solves (I/h - J) δ = f(y). Pseudo-transient continuation, like
every W-method, stays consistent with any approximation of J; here -J is replaced by
the compact limited-memory BFGS matrix B of the last `memory` pairs
(s = y1 - y0, f(y0) - f(y1) ≈ -J s) the accepted steps produced (Byrd, Nocedal &
Schnabel, Math. Prog. 63, 1994). For a gradient flow f = -∇L these are L-BFGS's own
pairs (steps and gradient differences), and the step

    (B + I/h) δ = -∇L

is a damped quasi-Newton step: gradient descent with rate h while h is small, the
L-BFGS step -B⁻¹∇L as h grows. The damping 1/h takes the place of L-BFGS's line
search, and `SERController` sets it: h grows by the ratio of successive gradient
norms (never shrinking on an accepted step), a step that raises the loss (under
`gradient_flow`) or the residual tenfold is rejected and h quartered. The field
at the end of an accepted step is the next step's (first same as last).
"""

from __future__ import annotations

from typing import ClassVar

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

from .._checks import check_positive_int
from ._interpolation import coefficients
from ._linearize import field, step_control
from ._protocol import Attempt, Work
from ._pseudo_transient import AbstractPseudoTransient, rms


class CurvaturePairs(eqx.Module):
    """The last `m` pairs (s, y ≈ A s) of a symmetric matrix A in a ring buffer (of
    the `count` pairs stored, the k-th, from 0, sits in row `k % m`) with their Gram
    matrices `ss[i, j] = s_i·s_j`, `sy[i, j] = s_i·y_j`, `yy[i, j] = y_i·y_j`, updated
    one row and column per new pair: a pair costs O(m n), not O(m² n)."""

    s: Float[Array, "m n"]
    y: Float[Array, "m n"]
    ss: Float[Array, "m m"]
    sy: Float[Array, "m m"]
    yy: Float[Array, "m m"]
    count: Int[Array, ""]

    @classmethod
    def empty(cls, size: int, n: int, dtype) -> "CurvaturePairs":
        vectors, gram = jnp.zeros((size, n), dtype), jnp.zeros((size, size), dtype)
        return cls(vectors, vectors, gram, gram, gram, jnp.zeros((), jnp.int32))

    def remember(self, s, y, keep=True) -> "CurvaturePairs":
        """The pairs with `(s, y)` added, if `keep`."""
        row = self.count % self.s.shape[0]
        new_s, new_y = self.s.at[row].set(s), self.y.at[row].set(y)
        s_s, y_y = new_s @ s, new_y @ y
        s_y, y_s = new_s @ y, new_y @ s  # [i] = s_i·y_new, y_i·s_new
        ss = self.ss.at[row, :].set(s_s).at[:, row].set(s_s)
        yy = self.yy.at[row, :].set(y_y).at[:, row].set(y_y)
        sy = self.sy.at[row, :].set(y_s).at[:, row].set(s_y)
        new = CurvaturePairs(new_s, new_y, ss, sy, yy, self.count + 1)
        return jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, self)

    def damped_inverse(self, damping):
        """`v -> (B + damping I)⁻¹ v` with B the limited-memory BFGS approximation
        of A from the stored pairs, in the compact form B = σI - Wᵀ M⁻¹ W of Byrd,
        Nocedal & Schnabel (Math. Prog. 63, 1994), σ = yᵀy / sᵀy of the newest pair.
        The damped inverse follows by the Sherman-Morrison-Woodbury formula: per
        application two products with the stored m x n blocks each way and one
        2m x 2m solve. B is positive definite when every stored pair has sᵀy > 0
        (store only those); with no pair stored, B = 0 and the inverse is
        v / damping."""
        m = self.s.shape[0]
        order = (self.count + jnp.arange(m)) % m  # rows oldest first
        written = jnp.arange(m) >= m - jnp.minimum(self.count, m)
        chronological = lambda g: jnp.where(written[:, None] & written[None, :], g[order][:, order], 0.0)
        ss, sy, yy = chronological(self.ss), chronological(self.sy), chronological(self.yy)
        d = jnp.diagonal(sy)
        any_pair = self.count > 0
        sigma = jnp.where(any_pair, yy[-1, -1] / jnp.where(any_pair, d[-1], 1.0), 0.0)
        lower = jnp.tril(sy, -1)
        unused = jnp.diag((~written).astype(ss.dtype))
        middle = jnp.block([[sigma * ss + unused, lower],
                            [lower.T, -jnp.diag(jnp.where(written, d, 1.0))]])
        # W = [σS; Y] (chronological rows), W Wᵀ from the Gram matrices
        wwt = jnp.block([[sigma**2 * ss, sigma * sy], [sigma * sy.T, yy]])
        c = sigma + damping
        lu = jax.scipy.linalg.lu_factor(middle - wwt / c)
        mask = written.astype(ss.dtype)

        def apply(v):
            wv = jnp.concatenate([sigma * (self.s @ v)[order], (self.y @ v)[order]]) * jnp.tile(mask, 2)
            x = jax.scipy.linalg.lu_solve(lu, wv) * jnp.tile(mask, 2)
            ring = lambda part: jnp.zeros_like(part).at[order].set(part)
            return v / c + (sigma * (ring(x[:m]) @ self.s) + ring(x[m:]) @ self.y) / c**2

        return apply


class SecantPseudoTransient(AbstractPseudoTransient):
    """Pseudo-transient continuation with limited-memory BFGS curvature in place of
    the Jacobian: one evaluation of the field per step, no Jacobian products, for
    fields with a symmetric Jacobian (gradient flows). Registered as `"ptc-lbfgs"`.

    **Arguments:**

    - `memory`: how many (step, field difference) pairs the curvature is built from
      (20, twice `optax.lbfgs`'s 10: under `PseudoTransient`'s step control, 10
      pairs reached loss 1e-4 on the 4-bit parity problem from 1 of 4 seeds, 20
      from 4 of 4). Pairs with sᵀ(f0 - f1) ≤ ε‖f0 - f1‖² (no positive
      curvature along the step) are skipped, so B stays positive definite and every
      step is a descent direction of a gradient flow. With no pair yet, B = 0: the
      first step is an explicit Euler step.
    - `max_growth`, `min_growth`, `reject_growth`: the settings of its default
      controller (see `SERController`). The defaults differ from `PseudoTransient`'s:
      an accepted step never shrinks h (`min_growth=1`), and only a tenfold growth
      of the residual rejects a step. Quasi-Newton steps often raise the gradient
      norm while they lower the loss; rejecting those (`reject_growth=2`,
      `min_growth=1.2`, as for `PseudoTransient`) keeps the steps short and close
      to the flow: 34 to 150 steps to loss 1e-4 on the 2,410-parameter digits MLP
      against 34 to 44 with the defaults (L-BFGS: 33 to 37), and more of the small
      sigmoid problems' seeds reached (4-bit parity: 7 of 8 against 3 of 8 within
      3,000 steps). Letting accepted steps shrink h by the residual ratio
      (`min_growth=0.5`) sits between the two (42 to 62 steps, 6 of 8).
    - `report`: set by `odeflow.solve`.

    Work per step: one field evaluation (two on the first step) and one linear
    solve (a 2·memory x 2·memory system; not counted as a factorisation).
    """

    memory: int = eqx.field(static=True, default=20)
    max_growth: float = 10.0
    min_growth: float = 1.0
    reject_growth: float = 10.0
    report: bool = eqx.field(static=True, default=False)

    linearizes: ClassVar[bool] = False

    def __check_init__(self):
        check_positive_int(self.memory, "memory")

    def init(self, terms, t0, t1, y0, args):
        flat = ravel_pytree(y0)[0]
        # the pairs, the field at the start of the next step, whether it is unknown
        return CurvaturePairs.empty(self.memory, flat.size, flat.dtype), jnp.zeros_like(flat), jnp.array(True)

    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump):
        del made_jump
        memory, stored, fresh = solver_state
        y0_flat, unravel = ravel_pytree(y0)
        dtype = y0_flat.dtype
        f = field(terms, args, unravel, dtype)
        f0 = jax.lax.cond(fresh, lambda: f(t0, y0_flat), lambda: stored)
        h = jnp.asarray(step_control(terms, t0, t1), dtype)
        # (I/h - J) δ = f0 times sign(h): (B + I/|h|) δ = sign(h) f0 with B ≈ -sign(h) J,
        # positive definite for a flow that settles in the direction time runs
        sign = jnp.sign(h)
        delta = memory.damped_inverse(1 / jnp.abs(h))(sign * f0)
        y1_flat = y0_flat + delta
        f1 = f(t1, y1_flat)
        difference = sign * (f0 - f1)  # ≈ B δ
        curved = delta @ difference > jnp.finfo(dtype).eps * (difference @ difference)
        memory = memory.remember(delta, difference, curved & jnp.all(jnp.isfinite(f1)))
        err = 0.5 * h * (f1 - f0)
        dense_info = dict(y0=y0, coeffs=coefficients(np.ones((1, 1)), [delta], unravel))
        work = Work.of(nfe=1 + fresh.astype(jnp.int32), num_linear_solves=1)
        return Attempt(unravel(y1_flat), unravel(err), dense_info, (memory, f1, jnp.array(False)),
                       dfx.RESULTS.successful, work, extra=(rms(f0), rms(f1)))
