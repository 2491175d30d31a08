"""Linear solvers of implicit and linearly implicit steps, as options (small pytrees
in the style of lineax).

Every implicit step solves systems (I - c A) x = b, where A is the Jacobian of the
vector field at the start of the step (or the term's approximation of it, e.g. a
Gauss-Newton matrix) given by its products v -> A v, and c the step times a
method coefficient. A linear solver `prepare`s the matrix once per step (a dense
solver forms A and factorises; a Krylov solver does nothing) and then solves as
often as the step needs, reporting its `Work`.

Krylov solves run behind `jax.lax.custom_linear_solve`, so they differentiate as
exact solves (the transposed system is solved by the same method on the transposed
products), and `tangent_solve` solves the linearised systems that implicit
differentiation of a Newton iteration needs, with the same method.

Work carried across steps: `Dense(jacobian_every=k)` re-evaluates A only every k
accepted steps (a Rosenbrock-W method keeps its order with a stale A); `CG(memory=m)`
preconditions each solve with an L-BFGS matrix from the last m directions of earlier
solves (`SecantMemory`). diffrax keeps a solver's state only from accepted steps, so
ages count accepted steps.
"""

import abc
import functools
from typing import Any, Callable, NamedTuple

import equinox as eqx
from equinox import AbstractVar
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from .._checks import check_positive_int
from .._options import as_option
from ._krylov import cg, gmres
from ._protocol import Work
from ._secant import SecantMemory


class Prepared(NamedTuple):
    """A prepared matrix: `solve(b, carried) -> (x, work, carried)`."""

    solve: Callable
    carried: Any
    work: Work


def exact_solve(run, tangent_solve, matvec, b, extra=None):
    """`(x, aux) = run(matvec, b, extra)`, an iterative solve of A x = b with
    `matvec(v) = A v`, differentiated as if exact: tangent systems A ẋ = ḃ - Ȧ x are
    solved by `tangent_solve(matvec, rhs)`, which must itself be transposable for
    reverse mode (`jax.lax.custom_linear_solve`). `aux` (work counts, carried
    directions) and `extra` (a preconditioner's data) carry no derivative.

    (`jax.lax.custom_linear_solve(..., has_aux=True)` would do, but under `jax.jacfwd`
    it marks the aux outputs of the primal solve as batched over the tangents.)"""
    fn, consts = jax.closure_convert(matvec, b)
    return _exact(run, tangent_solve, fn, consts, b, extra)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _exact(run, tangent_solve, fn, consts, b, extra):
    return run(lambda v: fn(v, *consts), b, extra)


@_exact.defjvp
def _exact_jvp(run, tangent_solve, fn, primals, tangents):
    consts, b, extra = primals
    consts_dot, b_dot, _ = tangents
    x, aux = _exact(run, tangent_solve, fn, consts, b, extra)
    _, a_dot_x = jax.jvp(lambda c: fn(x, *c), (consts,), (consts_dot,))
    x_dot = tangent_solve(lambda v: fn(v, *consts), b_dot - a_dot_x)
    return (x, aux), (x_dot, jax.tree.map(_zero_tangent, aux))


def refined(solve, max_rounds: int = 20):
    """`solve(matvec, b) -> x` repeated on the residual until it is below 1e-10
    relative (or the working precision), at most `max_rounds` times: iterative
    refinement, which makes a loose Krylov solve accurate where accuracy matters (the
    tangent systems of implicit differentiation), as Newton's iteration does for the
    step itself."""

    def run(matvec, b):
        target = jnp.maximum(1e-10, 10 * jnp.finfo(b.dtype).eps) * jnp.linalg.norm(b)

        def cond(carry):
            _, r, k = carry
            return (jnp.linalg.norm(r) > target) & (k < max_rounds)

        def body(carry):
            x, r, k = carry
            x = x + solve(matvec, r)
            return x, b - matvec(x), k + 1

        x, _, _ = jax.lax.while_loop(cond, body, (jnp.zeros_like(b), b, 0))
        return x

    return run


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


def _identity_columns(linear, n, dtype):
    """The matrix of the linear map `linear` on vectors of size `n`."""
    return jax.vmap(linear, out_axes=1)(jnp.eye(n, dtype=dtype))


class AbstractLinearSolver(eqx.Module):
    """A linear solver for (I - c A) x = b with A given by its products."""

    @abc.abstractmethod
    def carry_init(self, n: int, dtype) -> Any:
        """What the solver carries from step to step (`None` if nothing)."""

    @abc.abstractmethod
    def prepare(self, jvp: Callable, n: int, c, dtype, carried) -> Prepared:
        """Prepare I - c A with `jvp(v) = A v` on flat vectors of size `n`."""

    @abc.abstractmethod
    def tangent_solve(self, g: Callable, y):
        """Solve g(x) = y for a linear map `g` (the linearised residual of a Newton
        iteration at its root, for implicit differentiation)."""


class Dense(AbstractLinearSolver):
    """A dense Jacobian from `n` Jacobian-vector products and an LU factorisation per
    step. `jacobian_every=k` keeps the Jacobian for k accepted steps (the
    factorisation is redone as the step changes); only for methods that stay
    consistent with any Jacobian (Rosenbrock-W, pseudo-transient)."""

    jacobian_every: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        check_positive_int(self.jacobian_every, "jacobian_every")

    def carry_init(self, n, dtype):
        if self.jacobian_every == 1:
            return None
        return jnp.zeros((n, n), dtype), jnp.asarray(self.jacobian_every, jnp.int32)  # stale

    def prepare(self, jvp, n, c, dtype, carried):
        if carried is None:
            jacobian, fresh = _identity_columns(jvp, n, dtype), True
        else:
            old, age = carried
            fresh = age >= self.jacobian_every
            jacobian = jax.lax.cond(fresh, lambda: _identity_columns(jvp, n, dtype), lambda: old)
            carried = (jacobian, jnp.where(fresh, 1, age + 1).astype(jnp.int32))
        lu = jsl.lu_factor(jnp.eye(n, dtype=dtype) - c * jacobian)

        def solve(b, carried):
            return jsl.lu_solve(lu, b), Work.of(num_linear_solves=1), carried

        return Prepared(solve, carried, Work.of(num_jacobians=fresh, num_factorizations=1))

    def tangent_solve(self, g, y):
        return jnp.linalg.solve(_identity_columns(g, y.size, y.dtype), y)


class _AbstractKrylov(AbstractLinearSolver):
    rtol: AbstractVar[float]
    max_iters: AbstractVar[int]

    def __check_init__(self):
        check_positive_int(self.max_iters, "max_iters")
        if not isinstance(self.rtol, jax.core.Tracer) and not float(self.rtol) > 0:
            raise ValueError(f"rtol must be positive, got {self.rtol}; e.g. rtol=1e-2")


class GMRES(_AbstractKrylov):
    """Matrix-free GMRES on Jacobian-vector products, for any Jacobian: stops at the
    relative residual `rtol` or after `max_iters` products (the Krylov dimension)."""

    rtol: float = 1e-6
    max_iters: int = eqx.field(static=True, default=50)

    def carry_init(self, n, dtype):
        return None

    def _solve(self, matvec, b):
        return gmres(matvec, b, rtol=self.rtol, max_iters=self.max_iters)[0]

    def prepare(self, jvp, n, c, dtype, carried):
        matvec = lambda v: v - c * jvp(v)

        def run(matvec, b, _):
            x, used, _ = gmres(matvec, b, rtol=self.rtol, max_iters=self.max_iters)
            return x, used

        def solve(b, carried):
            x, used = exact_solve(run, self.tangent_solve, matvec, b)
            return x, Work.of(num_jvps=used, num_linear_solves=1), carried

        return Prepared(solve, carried, Work.of())

    def tangent_solve(self, g, y):
        run = refined(self._solve)
        return jax.lax.custom_linear_solve(g, y, run, transpose_solve=run)


class CG(_AbstractKrylov):
    """Matrix-free conjugate gradients, for symmetric Jacobians (gradient flows,
    where I - cA = I + c∇²L): stops at the relative residual `rtol`, after
    `max_iters` products, or at a direction of negative curvature (truncated CG as
    in Hessian-free optimisation). `memory=m` preconditions every solve with an
    L-BFGS matrix from the last m directions of earlier solves (Morales & Nocedal,
    SIAM J. Optim. 10, 2000)."""

    rtol: float = 1e-2
    max_iters: int = eqx.field(static=True, default=50)
    memory: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 0:
            raise ValueError(f"memory must be an integer >= 0, got {self.memory!r}")

    def carry_init(self, n, dtype):
        return SecantMemory.empty(self.memory, n, dtype) if self.memory else None

    def prepare(self, jvp, n, c, dtype, carried):
        matvec = lambda v: v - c * jvp(v)

        def run(matvec, b, extra):
            memory, c = extra
            if memory is None:
                x, used, _, _ = cg(matvec, b, rtol=self.rtol, max_iters=self.max_iters)
                return x, used
            observe = lambda mem, p, ap, ok: mem.remember(p, ap, c, ok)
            x, used, _, memory = cg(matvec, b, rtol=self.rtol, max_iters=self.max_iters,
                                    precondition=memory.inverse(c), observe=observe,
                                    observed=memory)
            return x, (used, memory)

        def solve(b, carried):
            x, aux = exact_solve(run, self.tangent_solve, matvec, b, (carried, c))
            used, carried = aux if carried is not None else (aux, None)
            return x, Work.of(num_jvps=used, num_linear_solves=1), carried

        return Prepared(solve, carried, Work.of())

    def tangent_solve(self, g, y):
        run = refined(lambda mv, b: cg(mv, b, rtol=self.rtol, max_iters=self.max_iters)[0])
        return jax.lax.custom_linear_solve(g, y, run, symmetric=True)


class AutoLinearSolver(AbstractLinearSolver):
    """`Dense()` for states of at most `dense_limit` entries, else `matrix_free`
    (decided when the solve is traced, from the state's size)."""

    dense_limit: int = eqx.field(static=True, default=100)
    matrix_free: AbstractLinearSolver = GMRES()

    def choose(self, n: int) -> AbstractLinearSolver:
        return Dense() if n <= self.dense_limit else self.matrix_free

    def carry_init(self, n, dtype):
        return self.choose(n).carry_init(n, dtype)

    def prepare(self, jvp, n, c, dtype, carried):
        return self.choose(n).prepare(jvp, n, c, dtype, carried)

    def tangent_solve(self, g, y):
        return self.choose(y.size).tangent_solve(g, y)


LINEAR_SOLVERS = {"dense": Dense, "gmres": GMRES, "cg": CG}


def as_linear_solver(solver) -> AbstractLinearSolver:
    """A linear solver from an instance or one of the names `"dense"`, `"gmres"`,
    `"cg"` (each at its defaults)."""
    return as_option(solver, AbstractLinearSolver, LINEAR_SOLVERS, "linear_solver",
                     "odeflow.solvers.Dense(), GMRES(rtol=..., max_iters=...) or CG(rtol=..., "
                     "max_iters=..., memory=...)")
