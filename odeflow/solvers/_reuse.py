"""Work that linearly implicit solvers carry from step to step in their solver state:
a dense Jacobian re-evaluated only every few steps, and the directions of earlier
Krylov solves (`SecantMemory`) that precondition the next ones.

diffrax keeps a solver state only from accepted steps, so ages count accepted steps
and a rejected step's Krylov directions are forgotten."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, Int

from .._checks import check_positive_int
from ._linearize import check_krylov_memory, shifted_solver
from ._secant import SecantMemory


def check_reuse(linear_solver: str, krylov_memory: int, jacobian_every: int) -> None:
    check_krylov_memory(linear_solver, krylov_memory)
    check_positive_int(jacobian_every, "jacobian_every")
    if jacobian_every > 1 and linear_solver != "dense":
        raise ValueError(
            "jacobian_every reuses a dense Jacobian, so it needs linear_solver='dense'; "
            f"got linear_solver={linear_solver!r}, so set jacobian_every=1"
        )


class CarriedWork(eqx.Module):
    """`jacobian` (dense, with its `age` in accepted steps) and `memory`
    (`SecantMemory`), each `None` where the solver does not reuse it."""

    jacobian: Float[Array, "n n"] | None
    age: Int[Array, ""] | None
    memory: SecantMemory | None

    @classmethod
    def empty(cls, y0, solver):
        """Nothing carried yet, for `solver`'s `linear_solver`, `krylov_memory` and
        `jacobian_every`."""
        y_flat = ravel_pytree(y0)[0]
        n, dtype = y_flat.size, y_flat.dtype
        jacobian = age = memory = None
        if solver.linear_solver == "dense" and solver.jacobian_every > 1:
            jacobian = jnp.zeros((n, n), dtype)
            age = jnp.asarray(solver.jacobian_every, jnp.int32)  # stale: evaluate at once
        if solver.krylov_memory:
            memory = SecantMemory.empty(solver.krylov_memory, n, dtype)
        return cls(jacobian, age, memory)

    def shifted_solver(self, solver, jvp, n: int, hg, dtype):
        """`(carried, solve, setup_work)`: `shifted_solver` for I - hg J as configured
        by `solver` (`linear_solver`, `krylov_rtol`, `krylov_max_iters`,
        `jacobian_every`), preconditioned by the carried memory, with the carried
        dense Jacobian re-evaluated from `jvp` once it is `jacobian_every` accepted
        steps old (counted in `setup_work`)."""
        carried, work = self, {}
        if self.jacobian is not None:
            fresh = self.age >= solver.jacobian_every
            eye = jnp.eye(n, dtype=dtype)
            jacobian = jax.lax.cond(
                fresh, lambda: jax.vmap(jvp, out_axes=1)(eye), lambda: self.jacobian
            )
            age = jnp.where(fresh, 1, self.age + 1).astype(jnp.int32)
            carried = CarriedWork(jacobian, age, self.memory)
            work = dict(num_jacobians=fresh.astype(jnp.int32))
        solve, setup = shifted_solver(
            solver.linear_solver, jvp, n, hg, dtype, solver.krylov_rtol,
            solver.krylov_max_iters, memory=carried.memory, jacobian=carried.jacobian,
        )
        return carried, solve, setup | work

    def remembering(self, memory):
        return CarriedWork(self.jacobian, self.age, memory)
