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

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PyTree

CURVATURES = ("hessian", "gauss-newton")


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


def check_curvature(curvature: str, loss_fn) -> None:
    if curvature not in CURVATURES:
        raise ValueError(f"unknown curvature {curvature!r}; use one of {', '.join(CURVATURES)}")
    if curvature == "gauss-newton" and not isinstance(loss_fn, CompositeLoss):
        raise TypeError(
            "curvature='gauss-newton' needs the loss split into model and output loss: "
            "pass odeflow.training.CompositeLoss(predict, output_loss) (tasks provide "
            "task.composite_loss), or use curvature='hessian'"
        )


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
