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
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int, PyTree

WORK_FIELDS = (  # in the order of `Work.counts`
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
    """The work of one step attempt (or a total of them): vector-field evaluations
    (`nfe`), dense Jacobians (`num_jacobians`), Jacobian-vector products outside dense
    Jacobians (`num_jvps`), linear solves, LU factorisations, Newton iterations,
    failed Newton solves, and steps attempted by the stiff method of a switching
    solver (`num_stiff_steps`); each an integer array, read by name.

    The counts travel as one int32 array with a trailing axis over `WORK_FIELDS`:
    one leaf, so the per-step bookkeeping of a solve is one small vector operation."""

    counts: Int[Array, "... 8"]

    @classmethod
    def of(cls, **counts) -> "Work":
        """Work from keyword counts (booleans count 1); counts not given are 0."""
        unknown = set(counts) - set(WORK_FIELDS)
        if unknown:
            raise TypeError(f"unknown work fields {sorted(unknown)}; use {', '.join(WORK_FIELDS)}")
        values = jnp.broadcast_arrays(*[jnp.asarray(counts.get(k, 0)).astype(jnp.int32) for k in WORK_FIELDS])
        return cls(jnp.stack(values, axis=-1))

    def __add__(self, other: "Work") -> "Work":
        return Work(self.counts + other.counts)

    def as_counts(self) -> "Work":
        """The same counts as int32 (diffrax passes error leaves through
        `jnp.where(isnan(x), inf, x)`, which turns integers into floats)."""
        return Work(jnp.asarray(self.counts).astype(jnp.int32))

    def as_dict(self) -> dict:
        """The counts by field name."""
        return {k: getattr(self, k) for k in WORK_FIELDS}

    def __repr__(self) -> str:
        if isinstance(self.counts, jax.core.Tracer):
            return "Work(traced)"
        counts = np.asarray(self.counts)
        return "Work(" + ", ".join(f"{k}={counts[..., i].tolist()}" for i, k in enumerate(WORK_FIELDS)) + ")"

    __str__ = __repr__

    nfe = property(lambda self: self.counts[..., 0])
    num_jacobians = property(lambda self: self.counts[..., 1])
    num_jvps = property(lambda self: self.counts[..., 2])
    num_linear_solves = property(lambda self: self.counts[..., 3])
    num_factorizations = property(lambda self: self.counts[..., 4])
    num_newton_iters = property(lambda self: self.counts[..., 5])
    num_newton_failures = property(lambda self: self.counts[..., 6])
    num_stiff_steps = property(lambda self: self.counts[..., 7])


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

    @property
    def steps_to_save_points(self) -> bool:
        """Whether `odeflow.solve`'s default controller lands steps on the save times
        (`step_ts`) rather than interpolating there: for a solver whose dense output
        is of lower order than its steps and that takes long steps."""
        return False

    @property
    def pseudo_time(self) -> bool:
        """Whether the steps run in pseudo-time toward a steady state, following no
        trajectory: `odeflow.solve` then takes the first step from the curvature of
        the field along itself (`pseudo_time_step`), not from an error estimate."""
        return False

    def default_controller(self, rtol, atol, norm, save_ts=None) -> dfx.AbstractStepSizeController:
        """The step-size controller `odeflow.solve` uses when none is given: a PID
        controller at `rtol`, `atol` and `norm` (`None`: RMS), stepping to the save
        times `save_ts` where `steps_to_save_points`, or constant steps for a method
        without an error estimate."""
        if not self.adaptive:
            return dfx.ConstantStepSize()
        step_ts = save_ts if self.steps_to_save_points else None
        return dfx.PIDController(rtol=rtol, atol=atol, step_ts=step_ts,
                                 **({} if norm is None else {"norm": norm}))

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
