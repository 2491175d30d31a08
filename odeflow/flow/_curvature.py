"""Curvature for implicit gradient-flow steps: the Hessian (automatic
differentiation) or the generalised Gauss-Newton matrix of a composite loss.

For L(θ) = ℓ(g(θ)) with model outputs g and an output loss ℓ, the generalised
Gauss-Newton (GGN) matrix is G = Jᵀ ∇²ℓ J with J = ∂g/∂θ (Schraudolph 2002). It is
positive semi-definite whenever ℓ is convex (sum of squares, cross-entropy), so
I + hγG is positive definite and conjugate gradients always apply; for a sum of
squares it is the Gauss-Newton matrix of Levenberg-Marquardt. A product G v costs
one forward-mode and one reverse-mode pass through the model.
"""

from __future__ import annotations

import abc
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

from .._options import as_option


class CompositeLoss(eqx.Module):
    """A loss `L(params) = output_loss(predict(params))` that keeps its two parts, so
    solvers can use Gauss-Newton curvature.

    - `predict(params) -> outputs` (any pytree), e.g. the model on the training set.
    - `output_loss(outputs) -> scalar`, convex for a positive semi-definite GGN.
    """

    predict: Callable[[PyTree], PyTree]
    output_loss: Callable[[PyTree], Float[Array, ""]]

    def __call__(self, params: PyTree) -> Float[Array, ""]:
        return self.output_loss(self.predict(params))


def gauss_newton_products(loss: CompositeLoss, params):
    """`(gradient, ggn_vp)` at `params`: the loss gradient and `v -> G v`, sharing
    one forward pass through the model."""
    out, jvp_model = jax.linearize(loss.predict, params)
    vjp_model = jax.linear_transpose(jvp_model, params)
    grad_out = jax.grad(loss.output_loss)

    def ggn_vp(v):
        _, curv = jax.jvp(grad_out, (out,), (jvp_model(v),))
        (gv,) = vjp_model(curv)
        return gv

    (gradient,) = vjp_model(grad_out(out))
    return gradient, ggn_vp


def negated(tree):
    return jax.tree.map(jnp.negative, tree)


def flow_linearize(loss: CompositeLoss):
    """The `linearize` of the gradient flow f = -∇L with Jacobian -G (for
    `odeflow.solve`)."""

    def linearize(t, params, args):
        gradient, ggn_vp = gauss_newton_products(loss, params)
        return negated(gradient), lambda v: negated(ggn_vp(v))

    return linearize


class AbstractCurvature(eqx.Module):
    """The Jacobian of the gradient-flow field -∇L that implicit and Rosenbrock
    steps use (derivatives of a solve always use the exact one)."""

    def check(self, loss_fn) -> None:
        """Raise, naming the fix, if `loss_fn` cannot provide this curvature."""

    @abc.abstractmethod
    def linearize(self, loss_fn, static) -> Callable | None:
        """The `linearize` argument of `odeflow.solve` for the flow of
        `loss_fn(eqx.combine(params, static))` (`None`: automatic differentiation)."""


class Hessian(AbstractCurvature):
    """The exact Jacobian -∇²L, by automatic differentiation (Hessian-vector
    products, forward over reverse)."""

    def linearize(self, loss_fn, static):
        return None


class GaussNewton(AbstractCurvature):
    """-G, the generalised Gauss-Newton matrix of a `CompositeLoss` (positive
    semi-definite for a convex output loss, so CG always applies). A plain
    `loss(params)` exposes its parts by being written as
    `CompositeLoss(predict, output_loss)`."""

    def check(self, loss_fn) -> None:
        if not isinstance(loss_fn, CompositeLoss):
            raise TypeError(
                "curvature='gauss-newton' needs the loss split into model and output loss: "
                "pass odeflow.flow.CompositeLoss(predict, output_loss) (tasks provide "
                "task.composite_loss), or use curvature='hessian'"
            )

    def linearize(self, loss_fn, static):
        predict = lambda p: loss_fn.predict(eqx.combine(p, static))
        return flow_linearize(CompositeLoss(predict, loss_fn.output_loss))


CURVATURES = {"hessian": Hessian, "gauss-newton": GaussNewton}
"""Curvatures by name (the shorthand `gradient_flow` and `odeflow compare` accept)."""


def as_curvature(curvature) -> AbstractCurvature:
    """A curvature from an instance or a name in `CURVATURES`."""
    return as_option(curvature, AbstractCurvature, CURVATURES, "curvature",
                     "odeflow.flow.Hessian() or GaussNewton()")


def check_curvature(curvature, loss_fn) -> AbstractCurvature:
    """The curvature object, checked against `loss_fn`; `"auto"` is Gauss-Newton for
    a `CompositeLoss`, else the Hessian."""
    if isinstance(curvature, str) and curvature.strip().lower() == "auto":
        curvature = GaussNewton() if isinstance(loss_fn, CompositeLoss) else Hessian()
    curvature = as_curvature(curvature)
    curvature.check(loss_fn)
    return curvature
