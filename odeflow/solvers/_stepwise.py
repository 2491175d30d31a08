"""Reverse-mode differentiation through a solve that stores where its steps start.

diffrax's `RecursiveCheckpointAdjoint` keeps about √max_steps checkpoints and
chooses online, step by step, which to keep (treeverse); its backward pass carries
all of them through a conditional at every step. For the few steps of a neural
ODE's block that bookkeeping costs more than the steps' own recomputation (measured
in `benchmarks/README.md`). `StepCheckpointAdjoint` keeps a fixed plan instead:

- the starting state of each of the first `stored_steps` steps;
- past them, the start of one step in every `stride`, where
  `stride = ceil((max_steps - stored_steps) / segments)` and `segments` is about
  √(max_steps - stored_steps).

The backward pass recomputes each step once from its stored start and
backpropagates through it; a segment past the stored steps is first recomputed
forward from its start (so those steps run forward twice). Memory is
`stored_steps + 2 segments` states, allocated whether or not the solve needs them;
by default `stored_steps` grows with `max_steps` as long as the stores stay small
(`STORED_BYTES`).
The gradient is that of the discrete solution, as with any backpropagation through
the solver.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import diffrax as dfx
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import jax.tree_util as jtu


# the automatic plan stores at least this many steps' starts, and more while they
# fit in STORED_BYTES: the stores are allocated (and their pages touched) on every
# call, which costs measurably on a large state (a neural ODE's batch)
MIN_STORED = 16
STORED_BYTES = 4 * 2**20


def _is_none(x) -> bool:
    return x is None


class _Plan(eqx.Module):
    """Which steps' starting states are kept: every one of the first `stored`, then
    one in every `stride` for `segments` segments."""

    max_steps: int = eqx.field(static=True)
    stored: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    segments: int = eqx.field(static=True)

    @classmethod
    def of(cls, max_steps: int, stored_steps: int | None, state_bytes: int) -> "_Plan":
        if stored_steps is None:  # as many as recursive checkpointing keeps, within the budget
            by_memory = STORED_BYTES // max(state_bytes, 1)
            stored_steps = max(MIN_STORED, min(math.isqrt(2 * max_steps), by_memory))
        stored = min(stored_steps, max_steps)
        rest = max_steps - stored
        segments = math.isqrt(rest - 1) + 1 if rest > 0 else 0  # ceil(sqrt(rest))
        stride = -(-rest // segments) if segments else 1
        return cls(max_steps, stored, stride, segments)


def _without_buffers(val, buffers):
    """`val` with its buffers (see `stepwise_while_loop`) replaced by `None`."""
    return eqx.tree_at(buffers, val, replace_fn=lambda _: None, is_leaf=_is_none)


def _with_buffers(bare, filled, buffers):
    return eqx.tree_at(buffers, bare, filled, is_leaf=_is_none)


def _write(store, index, value):
    """`store[index] = value`, leaf by leaf, in place."""
    return jtu.tree_map(lambda buf, x: jax.lax.dynamic_update_index_in_dim(buf, x, index, 0), store, value)


def _read(store, index):
    return jtu.tree_map(lambda buf: jax.lax.dynamic_index_in_dim(buf, index, 0, keepdims=False), store)


def _empty(like, slots: int):
    return jtu.tree_map(lambda x: jnp.zeros((slots,) + jnp.shape(x), jnp.result_type(x)), like)


@eqx.filter_custom_vjp
def _loop(vjp_arg, cond_fun, plan: _Plan, buffers):
    """The solve without differentiation: a plain while loop."""
    init, body_fun = vjp_arg

    def cond(carry):
        i, val = carry
        return (i < plan.max_steps) & cond_fun(val)

    def body(carry):
        i, val = carry
        return i + 1, body_fun(val)

    return jax.lax.while_loop(cond, body, (jnp.array(0), init))[1]


@_loop.def_fwd
def _loop_fwd(perturbed, vjp_arg, cond_fun, plan: _Plan, buffers):
    del perturbed
    init, body_fun = vjp_arg
    bare = _without_buffers(init, buffers)
    # one spare slot each, written by the steps that are not kept: a write with no
    # read of the old value, which costs measurably less than a select
    stored = _empty(bare, plan.stored + 1)
    starts = _empty(bare, plan.segments + 1)

    def cond(carry):
        i, val, _, _ = carry
        return (i < plan.max_steps) & cond_fun(val)

    def body(carry):
        i, val, stored, starts = carry
        bare = _without_buffers(val, buffers)
        stored = _write(stored, jnp.minimum(i, plan.stored), bare)
        past = i - plan.stored
        kept = (past >= 0) & (past % plan.stride == 0)
        starts = _write(starts, jnp.where(kept, past // plan.stride, plan.segments), bare)
        return i + 1, body_fun(val), stored, starts

    steps, final, stored, starts = jax.lax.while_loop(cond, body, (jnp.array(0), init, stored, starts))
    return final, (steps, stored, starts, buffers(final))


@_loop.def_bwd
def _loop_bwd(residuals, grad_final, perturbed, vjp_arg, cond_fun, plan: _Plan, buffers):
    del perturbed, cond_fun
    steps, stored, starts, filled = residuals
    init, body_fun = vjp_arg
    diff_body, static_body = eqx.partition(body_fun, eqx.is_inexact_array)
    # cotangents of the final state, zeros where none flowed in (inexact leaves only)
    grad_val = jtu.tree_map(
        lambda g, x: (jnp.zeros_like(x) if g is None else g) if eqx.is_inexact_array(x) else None,
        grad_final, init, is_leaf=_is_none,
    )
    grad_body = jtu.tree_map(jnp.zeros_like, diff_body)

    def full(bare):
        return _with_buffers(bare, filled, buffers)

    def back_one(bare, grads):
        """Backpropagate the cotangents through the step that starts at `bare`."""
        grad_val, grad_body = grads
        val = full(bare)
        diff_val, static_val = eqx.partition(val, eqx.is_inexact_array)

        def step(d_body, d_val):
            out = eqx.combine(d_body, static_body)(eqx.combine(d_val, static_val))
            return eqx.filter(out, eqx.is_inexact_array)

        _, vjp = jax.vjp(step, diff_body, diff_val)
        d_body, d_val = vjp(grad_val)
        return d_val, jtu.tree_map(jnp.add, grad_body, d_body)

    def back_through(store, count, grads):
        """Backpropagate through the steps that start at `store[count - 1]`, ...,
        `store[0]`, in that order."""

        def one(c):
            k, grads = c
            return k - 1, back_one(_read(store, k - 1), grads)

        return jax.lax.while_loop(lambda c: c[0] > 0, one, (count, grads))[1]

    # past the stored steps: each segment forward from its start, then backwards
    past = jnp.maximum(steps - plan.stored, 0)
    used = (past + plan.stride - 1) // plan.stride

    def segment_back(carry):
        j, grads = carry
        j = j - 1
        length = jnp.minimum(plan.stride, past - j * plan.stride)
        segment = _empty(_read(starts, 0), plan.stride)

        def forward(c):
            k, val, segment = c
            segment = _write(segment, k, _without_buffers(val, buffers))
            return k + 1, body_fun(val), segment

        _, _, segment = jax.lax.while_loop(
            lambda c: c[0] < length, forward, (jnp.array(0), full(_read(starts, j)), segment)
        )

        return j, back_through(segment, length, grads)

    grads = (grad_val, grad_body)
    if plan.segments:
        _, grads = jax.lax.while_loop(lambda c: c[0] > 0, segment_back, (used, grads))

    return back_through(stored, jnp.minimum(steps, plan.stored), grads)


def stepwise_while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any, *, max_steps: int,
                        buffers: Callable, stored_steps: int | None) -> Any:
    """`lax.while_loop(cond_fun, body_fun, init_val)` for at most `max_steps` steps,
    reverse-mode differentiable by storing step starts (see the module docstring).
    `buffers(val)` names the leaves of `val` that the body only writes to (a
    solve's saved outputs): they are not stored, and the backward pass uses their
    final values."""
    init_val = jtu.tree_map(jnp.asarray, init_val)
    bare = _without_buffers(init_val, buffers)
    state_bytes = sum(x.size * x.dtype.itemsize for x in jtu.tree_leaves(bare))
    plan = _Plan.of(max_steps, stored_steps, state_bytes)
    cond_fun = eqx.filter_closure_convert(cond_fun, init_val)
    cond_fun = jtu.tree_map(lambda x: jax.lax.stop_gradient(x) if eqx.is_array(x) else x, cond_fun)
    body_fun = eqx.filter_closure_convert(body_fun, init_val)
    return _loop((init_val, body_fun), cond_fun, plan, buffers)


class StepCheckpointAdjoint(dfx.AbstractAdjoint):
    """Backpropagation through the solver's steps, each recomputed once from a
    stored starting state: exact gradients of the discrete solution, as
    `diffrax.RecursiveCheckpointAdjoint`, with a fixed plan of what is stored in
    place of its online one.

    The starts of the first `stored_steps` steps are kept; past them, one start in
    every `ceil((max_steps - stored_steps) / s)` steps, `s ≈ √(max_steps -
    stored_steps)`, and those steps are recomputed twice. Memory: `stored_steps +
    2 s` states. `stored_steps=None` (default) keeps as many as recursive
    checkpointing would (√(2 max_steps)) while they fit in 4 MiB, and at least 16:
    the stores are allocated on every call, which costs time on a large state.

    For the few steps of a neural ODE's block this is the cheapest exact gradient
    odeflow has measured (`benchmarks/README.md`); it is the gradient
    `"checkpoint"` of `odeflow.nn.ODEBlock` with `batching="joint"`. Under
    `jax.vmap` with many steps it is slower than diffrax's recursive checkpointing
    (each vectorised step selects over the stores), so a per-sample `ODEBlock` uses
    that. Reverse mode only (use `diffrax.ForwardMode` or `diffrax.DirectAdjoint`
    for forward mode); needs a finite `max_steps`.
    """

    stored_steps: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        given = self.stored_steps
        if given is not None and (not isinstance(given, int) or given < 1):
            raise ValueError(f"stored_steps must be a positive integer, got {self.stored_steps!r}")

    def loop(self, *, max_steps, throw, passed_solver_state, passed_controller_state, **kwargs):
        del throw, passed_solver_state, passed_controller_state
        if max_steps is None:
            raise ValueError("StepCheckpointAdjoint needs a finite max_steps (e.g. max_steps=4096): "
                             "it allocates its stored states from it")
        outer = functools.partial(stepwise_while_loop, stored_steps=self.stored_steps)
        return self._loop(
            max_steps=max_steps,
            inner_while_loop=functools.partial(eqxi.while_loop, kind="checkpointed"),
            outer_while_loop=outer,
            **kwargs,
        )
