"""Work counts of one solve, returned as data (a pytree), never accumulated in globals;
and the outcome of a solve in words."""

from __future__ import annotations

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

NOT_COUNTED = -1
"""Value of a count that the solver cannot report exactly (e.g. Newton iterations
inside a diffrax built-in implicit solver)."""


def _count(value) -> Int[Array, "..."]:
    return jnp.asarray(value).astype(jnp.int32)


def _concrete(tree) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


class SolverStats(eqx.Module):
    """Exact work counts of one solve (per sample under `vmap`).

    **Fields:**

    - `nfe`: vector-field evaluations. In `odeflow.gradient_flow` each one is a
      gradient of the full-batch loss, i.e. one presentation of the training set.
    - `num_steps`, `num_accepted`, `num_rejected`: steps attempted, accepted, rejected.
    - `num_jacobians`: dense Jacobians formed (dense Hessians in gradient flow).
    - `num_jvps`: Jacobian-vector products outside dense Jacobians (Hessian-vector
      products in gradient flow).
    - `num_linear_solves`: linear solves (one per Newton iteration).
    - `num_factorizations`: LU factorisations of the iteration matrix.
    - `num_newton_iters`: nonlinear-solver iterations.
    - `num_newton_failures`: nonlinear solves that did not converge (step rejected).
    - `num_loss_evals`: forward-only evaluations of the loss or model (stopping
      tests, loss history, output-space error control; a JVP through it counts one).
    - `num_stiff_steps`: steps attempted by the stiff method of a switching solver
      (`"auto"`); `num_switches`: switches between its non-stiff and stiff methods.

    A count that cannot be obtained exactly is `-1` (`odeflow.solvers.NOT_COUNTED`).
    `print(stats)` shows the counts; stats of a batch (under `vmap`) show their shape
    and each count's minimum, median and maximum, and `stats.sum()` totals them.
    """

    nfe: Int[Array, "..."]
    num_steps: Int[Array, "..."]
    num_accepted: Int[Array, "..."]
    num_rejected: Int[Array, "..."]
    num_jacobians: Int[Array, "..."]
    num_jvps: Int[Array, "..."]
    num_linear_solves: Int[Array, "..."]
    num_factorizations: Int[Array, "..."]
    num_newton_iters: Int[Array, "..."]
    num_newton_failures: Int[Array, "..."]
    num_loss_evals: Int[Array, "..."]
    num_stiff_steps: Int[Array, "..."]
    num_switches: Int[Array, "..."]

    @classmethod
    def make(cls, **counts) -> "SolverStats":
        """Build stats from keyword counts; counts not given are 0."""
        unknown = set(counts) - set(cls.__dataclass_fields__)
        if unknown:
            raise TypeError(f"unknown SolverStats fields {sorted(unknown)}")
        return cls(**{k: _count(counts.get(k, 0)) for k in cls.__dataclass_fields__})

    def as_dict(self) -> dict:
        """The counts as Python ints (or nested lists under `vmap`)."""
        return {k: getattr(self, k).tolist() for k in self.__dataclass_fields__}

    def sum(self, axis: int | None = None) -> "SolverStats":
        """Totals over a batch (every leading axis, or only `axis`); a count that is
        `-1` in any sample stays `-1`."""
        def total(x):
            x = jnp.asarray(x)
            missing = jnp.any(x == NOT_COUNTED, axis=axis)
            return jnp.where(missing, NOT_COUNTED, jnp.sum(x, axis=axis)).astype(jnp.int32)

        return jax.tree.map(total, self)

    def __repr__(self) -> str:
        if not _concrete(self):
            return super().__repr__()
        values = {k: np.asarray(getattr(self, k)) for k in self.__dataclass_fields__}
        shape = values["nfe"].shape
        if shape == ():
            body = ", ".join(f"{k}={int(v)}" for k, v in values.items())
            return f"SolverStats({body})"
        lines = [f"SolverStats of a batch of shape {shape} (min / median / max):"]
        width = max(map(len, values))
        for k, v in values.items():
            low, mid, high = np.min(v), np.median(v), np.max(v)
            mid = f"{mid:g}" if mid != int(mid) else str(int(mid))
            lines.append(f"  {k:<{width}}  {low} / {mid} / {high}")
        return "\n".join(lines)

    __str__ = __repr__


def _words(value: int) -> str:
    """The name of a diffrax result code, with its message where there is one."""
    names = {int(v._value): name for name, v in dfx.RESULTS._name_to_item.items()}
    message = dfx.RESULTS._index_to_message[value]
    return names[value] if not message else f"{names[value]}: {message}"


class Result(type(dfx.RESULTS.successful)):  # diffrax's (equinox's) enumeration item
    """A `diffrax.RESULTS` code that prints in words (`successful`,
    `max_steps_reached: ...`, an array of them for a batch); it compares equal to
    the diffrax codes and works wherever they do."""

    def __repr__(self) -> str:
        if isinstance(self._value, jax.core.Tracer):
            return "Result(traced)"
        value = np.asarray(self._value)
        if value.shape == ():
            return _words(int(value))
        return str(np.vectorize(lambda v: _words(int(v)))(value))

    __str__ = __repr__

    @classmethod
    def of(cls, item) -> "Result":
        """The same code as the diffrax result `item`."""
        return cls(item._value, dfx.RESULTS)
