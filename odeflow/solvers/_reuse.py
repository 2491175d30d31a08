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
from ._linearize import check_krylov_memory
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
    def empty(cls, y0, linear_solver: str, krylov_memory: int, jacobian_every: int):
        y_flat = ravel_pytree(y0)[0]
        n, dtype = y_flat.size, y_flat.dtype
        jacobian = age = memory = None
        if linear_solver == "dense" and jacobian_every > 1:
            jacobian = jnp.zeros((n, n), dtype)
            age = jnp.asarray(jacobian_every, jnp.int32)  # stale: evaluate at the first step
        if krylov_memory:
            memory = SecantMemory.empty(krylov_memory, n, dtype)
        return cls(jacobian, age, memory)

    def refresh(self, jvp, n: int, dtype, jacobian_every: int):
        """`(carried, fresh)`: the Jacobian for this step, evaluated from `jvp` when
        `jacobian_every` accepted steps old (`fresh`), else the carried one."""
        if self.jacobian is None:
            return self, 0
        fresh = self.age >= jacobian_every
        eye = jnp.eye(n, dtype=dtype)
        jacobian = jax.lax.cond(
            fresh, lambda: jax.vmap(jvp, out_axes=1)(eye), lambda: self.jacobian
        )
        age = jnp.where(fresh, 1, self.age + 1).astype(jnp.int32)
        return CarriedWork(jacobian, age, self.memory), fresh.astype(jnp.int32)

    def remembering(self, memory):
        return CarriedWork(self.jacobian, self.age, memory)
