"""How good and how costly is a gradient method? Gradients of an `ODEBlock` loss by
each method against forward mode and central finite differences, with the
vector-field evaluations of the forward and the backward pass counted."""

from __future__ import annotations

import dataclasses

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ..solvers import AbstractCountedSolver, get_solver
from ._block import ODEBlock
from ._gradients import GRADIENTS


@dataclasses.dataclass(eq=False)  # hashed by identity: a static field of a module
class EvaluationCounter:
    """Host-side tallies of vector-field evaluations, filled in by
    `counted(block, counter)` through `jax.debug.callback`: `forward` (the
    field itself, including recomputation during the backward pass), `vjp`
    (vector-Jacobian products, reverse mode) and `jvp` (Jacobian-vector products,
    forward mode; a vectorised product over many tangents counts once)."""

    forward: int = 0
    vjp: int = 0
    jvp: int = 0

    def bump(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)


class _Counted(eqx.Module):
    vector_field: object
    counter: EvaluationCounter = eqx.field(static=True)
    mode: str = eqx.field(static=True)

    def __call__(self, t, h, args):
        jax.debug.callback(lambda: self.counter.bump("forward"))
        out = self.vector_field(t, h, args)
        return _tick(out, self.counter, self.mode)


def _tick(out, counter: EvaluationCounter, mode: str):
    """Identity on `out` that counts the derivative products flowing through it."""
    if mode == "forward":

        @jax.custom_jvp
        def tick(x):
            return x

        @tick.defjvp
        def tick_jvp(primals, tangents):
            jax.debug.callback(lambda: counter.bump("jvp"))
            return primals[0], tangents[0]

        return tick(out)

    @jax.custom_vjp
    def tick(x):
        return x

    def tick_bwd(_, cotangent):
        jax.debug.callback(lambda: counter.bump("vjp"))
        return (cotangent,)

    tick.defvjp(lambda x: (x, None), tick_bwd)
    return tick(out)


def _linearizes(solver) -> bool:
    if isinstance(solver, AbstractCountedSolver):
        return solver.linearizes
    return isinstance(solver, dfx.AbstractImplicitSolver)


def counted(block: ODEBlock, counter: EvaluationCounter) -> ODEBlock:
    """`block` with its vector field counted into `counter` (same parameters)."""
    mode = "forward" if block.gradient == "forward" else "reverse"
    if mode == "reverse" and _linearizes(get_solver(block.solver)):
        raise ValueError(
            "counting vector-Jacobian products wraps the field in a custom_vjp, of which "
            "a solver that differentiates the field in its steps (odeflow's implicit, "
            "Rosenbrock and switching solvers, diffrax's implicit solvers) cannot take a "
            "Jacobian; count with gradient='forward' or an explicit solver, or train with "
            "count_nfe=False")
    return eqx.tree_at(lambda b: b.vector_field, block, _Counted(block.vector_field, counter, mode))


def gradient_check(block: ODEBlock, h, loss_fn=None, args=None, *, gradients=GRADIENTS,
                   eps: float = 1e-6, seed: int = 0) -> dict[str, dict]:
    """Compare gradient methods on `loss_fn(block(h, args))` (default: sum of squares).

    For each method in `gradients`: the gradient with respect to the block's
    parameters and `h`; its largest relative error against forward mode; the error
    of its derivative along a random unit direction against a central finite
    difference with step `eps`; the forward NFE (`SolverStats`) and the evaluations
    counted in the backward pass (`nfe_backward`: vector-Jacobian products, or for
    forward mode vectorised Jacobian-vector products, each carrying `tangents`
    directions, one per input) and the forward
    evaluations made while differentiating beyond the forward pass's own
    (`extra_forward`: recomputation from checkpoints, the backsolve's state). Use
    float64.
    """
    if loss_fn is None:
        loss_fn = lambda out: sum(jnp.sum(x**2) for x in jax.tree.leaves(out))
    params, static = eqx.partition(block, eqx.is_inexact_array)

    def loss(p, x, method):
        b = dataclasses.replace(eqx.combine(p, static), gradient=method)
        return loss_fn(b(x, args))

    flat = lambda g: ravel_pytree(g)[0]
    reference = flat(jax.grad(loss, argnums=(0, 1))(params, h, "forward"))
    direction = jax.random.normal(jax.random.key(seed), reference.shape, reference.dtype)
    direction = direction / jnp.linalg.norm(direction)
    _, unravel = ravel_pytree((params, h))
    shifted = lambda s: unravel(flat((params, h)) + s * direction)
    fd = (loss(*shifted(eps), block.gradient) - loss(*shifted(-eps), block.gradient)) / (2 * eps)
    report = {}
    for method in gradients:
        # one differentiation per method: the counted block has the same parameters
        # (the counting wrapper is an identity), its solve returns the forward stats
        counter = EvaluationCounter()
        b = counted(dataclasses.replace(block, gradient=method), counter)
        probe, probe_static = eqx.partition(b, eqx.is_inexact_array)

        def counted_loss(p, x):
            out, stats = eqx.combine(p, probe_static).solve(x, args)
            return loss_fn(out), stats

        grads, stats = jax.grad(counted_loss, argnums=(0, 1), has_aux=True)(probe, h)
        jax.effects_barrier()
        grad = flat(grads)
        nfe = int(stats.nfe)
        report[method] = {
            "max_rel_error_vs_forward": float(
                jnp.max(jnp.abs(grad - reference)) / jnp.maximum(jnp.max(jnp.abs(reference)), 1e-300)),
            "directional_error_vs_fd": float(jnp.abs(grad @ direction - fd)),
            "nfe_forward": nfe,
            "nfe_backward": counter.vjp + counter.jvp,
            "tangents": reference.size if method == "forward" else 1,
            "extra_forward": max(counter.forward - nfe, 0),
        }
    return report

