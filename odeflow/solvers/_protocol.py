"""The protocol every odeflow solver follows.

An odeflow solver is a diffrax solver (it runs inside `diffrax.diffeqsolve`) whose
`attempt` returns, besides the new state and its error estimate, the work the
attempt cost. With `report=False` (the default) `step` hands diffrax the plain error
estimate, so any diffrax step-size controller works unchanged. With `report=True`
it hands over a `StepReport` instead, the error and the work in one typed pytree; a
`CountingController` (`odeflow.solvers.count_work`) wraps the step-size controller,
totals the work of every attempt, accepted or rejected, and passes the error on.
The controller sees the same error either way, so counting never changes a step.

diffrax keeps a solver's state only from accepted steps and discards it on
rejection, which is why the work travels with the error (which reaches the
controller on every attempt) rather than in the solver state. A solver's `init`
does no counted work: everything a solver evaluates, it evaluates in a step.

A solver also answers the questions `odeflow.solve` asks instead of checking
types: its default step-size controller, whether it supports an adjoint, and any
statistics read from its final state.
"""

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

import diffrax as dfx
import equinox as eqx
from equinox import AbstractVar
import jax.numpy as jnp
from jaxtyping import Array, Int, PyTree

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


class Work(eqx.Module):
    """The work of one step attempt (or a total of them): vector-field evaluations,
    dense Jacobians, Jacobian-vector products outside dense Jacobians, linear
    solves, LU factorisations, Newton iterations, failed Newton solves, and steps
    attempted by the stiff method of a switching solver. Each an integer array."""

    nfe: Int[Array, "..."]
    num_jacobians: Int[Array, "..."]
    num_jvps: Int[Array, "..."]
    num_linear_solves: Int[Array, "..."]
    num_factorizations: Int[Array, "..."]
    num_newton_iters: Int[Array, "..."]
    num_newton_failures: Int[Array, "..."]
    num_stiff_steps: Int[Array, "..."]

    @classmethod
    def of(cls, **counts) -> "Work":
        """Work from keyword counts (booleans count 1); counts not given are 0."""
        unknown = set(counts) - set(WORK_FIELDS)
        if unknown:
            raise TypeError(f"unknown work fields {sorted(unknown)}; use {', '.join(WORK_FIELDS)}")
        return cls(**{k: jnp.asarray(counts.get(k, 0)).astype(jnp.int32) for k in WORK_FIELDS})

    def __add__(self, other: "Work") -> "Work":
        return Work(**{k: getattr(self, k) + getattr(other, k) for k in WORK_FIELDS})

    def as_counts(self) -> "Work":
        """The same counts as int32 (diffrax passes error leaves through
        `jnp.where(isnan(x), inf, x)`, which turns integers into floats)."""
        return Work(**{k: jnp.asarray(getattr(self, k)).astype(jnp.int32) for k in WORK_FIELDS})


class StepReport(eqx.Module):
    """What an odeflow solver's step hands the step-size controller with
    `report=True`: the local error estimate (`None` for a method without one), the
    work of the attempt, and `extra` information for a controller that reads it
    (`PseudoTransient` reports the residual norms its `SERController` steps by)."""

    error: PyTree | None
    work: Work
    extra: Any = None


class Attempt(NamedTuple):
    """One step attempt: what `diffrax.AbstractSolver.step` returns, plus its work."""

    y1: PyTree
    error: PyTree | None
    dense_info: dict
    solver_state: Any
    result: dfx.RESULTS
    work: Work
    extra: Any = None


class AbstractCountedSolver(dfx.AbstractAdaptiveSolver):
    """Base of every odeflow solver. Subclasses implement `attempt` (and diffrax's
    `order`, `error_order`, `init`, `func`); `step` is final.

    - `report` (static): hand the controller a `StepReport` instead of the plain
      error. Set by `odeflow.solve`, or by `solver.reporting()` for a direct
      `diffrax.diffeqsolve` with `odeflow.solvers.count_work(controller)`.
    """

    report: AbstractVar[bool]
    linearizes: ClassVar[bool] = True  # whether steps differentiate the vector field

    @abc.abstractmethod
    def attempt(self, terms, t0, t1, y0, args, solver_state, made_jump) -> Attempt:
        """One step from `(t0, y0)` to `t1`, with its work."""

    def step(self, terms, t0, t1, y0, args, solver_state, made_jump):
        out = self.attempt(terms, t0, t1, y0, args, solver_state, made_jump)
        error = StepReport(out.error, out.work, out.extra) if self.report else out.error
        return out.y1, error, out.dense_info, out.solver_state, out.result

    def reporting(self, report: bool = True):
        """This solver with `report` set."""
        return dataclasses.replace(self, report=report)

    @property
    def adaptive(self) -> bool:
        """Whether steps come with an error estimate (for adaptive step sizes)."""
        return True

    def default_controller(self, rtol, atol, norm) -> dfx.AbstractStepSizeController:
        """The step-size controller `odeflow.solve` uses when none is given: a PID
        controller at `rtol`, `atol` and `norm` (`None`: RMS), or constant steps for a
        method without an error estimate."""
        if not self.adaptive:
            return dfx.ConstantStepSize()
        return dfx.PIDController(rtol=rtol, atol=atol, **({} if norm is None else {"norm": norm}))

    def adjoint_problem(self, adjoint: dfx.AbstractAdjoint) -> str | None:
        """Why this solver cannot run under `adjoint`, naming what works instead, or
        `None` where it can."""
        del adjoint
        return None

    def final_stats(self, solver_state) -> dict:
        """Counts read from the solver state after the last accepted step, by
        `SolverStats` field name."""
        del solver_state
        return {}
