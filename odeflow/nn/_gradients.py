"""Gradient methods of an ODE solve, by name.

- `"checkpoint"`: backpropagation through the solver's operations, each step
  recomputed once from its stored start (`odeflow.solvers.StepCheckpointAdjoint`;
  per sample, diffrax's `RecursiveCheckpointAdjoint`): exact gradients of the
  discrete solution; the starts of the first steps are kept, then one in about
  every √max_steps (those steps are recomputed twice).
- `"backsolve"`: the continuous adjoint of Chen et al. (2018) (`BacksolveAdjoint`):
  the state is recomputed backwards in time beside the adjoint; constant memory, a
  gradient that is only as accurate as the backward solve.
- `"direct"`: backpropagation through the solver with the loop unrolled into
  bounded checkpoints (`DirectAdjoint`); also supports forward mode, at more memory.
- `"forward"`: forward sensitivities: the Jacobian of the solution with respect to
  every input by forward-mode differentiation through the solver (`ForwardMode`),
  one tangent per input; `jax.grad` then contracts it with the cotangent. Cheapest
  for few parameters plus states (Rackauckas et al. 2018), costly beyond.

Every registered solver supports every method, with one exception that the solver
itself names (`AbstractCountedSolver.adjoint_problem`): pseudo-transient
continuation has no trajectory for `"backsolve"` to retrace.
"""

from __future__ import annotations

import diffrax as dfx
import jax
from jax.flatten_util import ravel_pytree

from ..solvers import StepCheckpointAdjoint


GRADIENTS = ("checkpoint", "backsolve", "direct", "forward")


def check_gradient(name: str) -> None:
    if name not in GRADIENTS:
        raise ValueError(f"unknown gradient {name!r}; use one of {', '.join(GRADIENTS)}")


def adjoint_for(name: str, batching: str = "joint") -> dfx.AbstractAdjoint:
    """The diffrax adjoint that runs the solve for gradient method `name`. Solved
    per sample (under `vmap`), `"checkpoint"` is diffrax's recursive
    checkpointing: `StepCheckpointAdjoint`'s stores would be selected over at every
    vectorised step."""
    if name == "checkpoint" and batching != "joint":
        return dfx.RecursiveCheckpointAdjoint()
    return {
        "checkpoint": StepCheckpointAdjoint(),
        "backsolve": dfx.BacksolveAdjoint(),
        "direct": dfx.DirectAdjoint(),
        "forward": dfx.ForwardMode(),
    }[name]


def forward_sensitivities(fn, inputs):
    """`fn(inputs)` whose reverse-mode derivative is computed by forward mode: the
    full Jacobian with respect to the flattened `inputs` (one tangent per entry,
    vectorised), contracted with the cotangent in the backward pass. `fn` returns
    `(differentiable_out, aux)`; `aux` passes through without derivative."""
    flat, unravel = ravel_pytree(inputs)

    def flat_fn(x):
        out, aux = fn(unravel(x))
        out_flat, _ = ravel_pytree(out)
        return out_flat, (out, aux)

    @jax.custom_vjp
    def run(x):
        return flat_fn(x)[1]

    def run_fwd(x):
        jac, (out, aux) = jax.jacfwd(flat_fn, has_aux=True)(x)
        return (out, aux), jac

    def run_bwd(jac, cotangents):
        out_cotangent, _ = cotangents
        ct_flat, _ = ravel_pytree(out_cotangent)
        return (ct_flat @ jac.astype(ct_flat.dtype),)

    run.defvjp(run_fwd, run_bwd)
    return run(flat)
