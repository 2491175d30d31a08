"""Work counts of one solve, returned as data (a pytree), never accumulated in globals."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Int

NOT_COUNTED = -1
"""Value of a count that the solver cannot report exactly (e.g. Newton iterations
inside a diffrax built-in implicit solver)."""


WORK_FIELDS = (
    "nfe",
    "num_jacobians",
    "num_jvps",
    "num_linear_solves",
    "num_factorizations",
    "num_newton_iters",
    "num_newton_failures",
    "num_stiff_steps",
)
"""Order of the per-step work vector that odeflow's solvers hand to the counting
controller (see `_counting.py`)."""


def work_vector(**counts):
    """A step's work as an int vector ordered as `WORK_FIELDS` (missing counts 0)."""
    unknown = set(counts) - set(WORK_FIELDS)
    if unknown:
        raise TypeError(f"unknown work fields {sorted(unknown)}")
    return jnp.stack([jnp.asarray(counts.get(name, 0), jnp.int32) for name in WORK_FIELDS])


def _count(value) -> Int[Array, ""]:
    return jnp.asarray(value, dtype=jnp.int32)


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
    """

    nfe: Int[Array, ""]
    num_steps: Int[Array, ""]
    num_accepted: Int[Array, ""]
    num_rejected: Int[Array, ""]
    num_jacobians: Int[Array, ""]
    num_jvps: Int[Array, ""]
    num_linear_solves: Int[Array, ""]
    num_factorizations: Int[Array, ""]
    num_newton_iters: Int[Array, ""]
    num_newton_failures: Int[Array, ""]
    num_loss_evals: Int[Array, ""]
    num_stiff_steps: Int[Array, ""]
    num_switches: Int[Array, ""]

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
