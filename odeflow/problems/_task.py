"""The `Task` type: a full-batch training problem."""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A full-batch problem. Hashes by identity, so `task.loss` is a stable `jit`
    cache key: two runs on the same task reuse one compilation.

    - `name`, `description`.
    - `data`: dict of arrays (`x`, `y`, and `x_test`, `y_test` where there is a split).
    - `init_fn(key) -> params`: initial parameters (a dict of arrays).
    - `apply_fn(params, x) -> outputs`.
    - `loss_fn(outputs, y) -> scalar`: the training loss on outputs.
    - `accuracy_fn(outputs, y) -> scalar`: fraction classified correctly.
    """

    name: str
    description: str
    data: dict
    init_fn: Callable[[PRNGKeyArray], PyTree]
    apply_fn: Callable[[PyTree, Array], Array]
    loss_fn: Callable[[Array, Array], Float[Array, ""]]
    accuracy_fn: Callable[[Array, Array], Float[Array, ""]]

    def init(self, key: PRNGKeyArray) -> PyTree:
        """Initial parameters for one seed."""
        return self.init_fn(key)

    def init_batch(self, seeds) -> PyTree:
        """Initial parameters for several integer seeds, stacked on a leading axis."""
        keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
        return jax.vmap(lambda k: self.init_fn(jax.random.wrap_key_data(k)))(keys)

    @functools.cached_property
    def composite_loss(self):
        """The training loss as `CompositeLoss(predict, output_loss)`, for
        Gauss-Newton curvature (`gradient_flow(..., curvature="gauss-newton")`).
        One instance per task, so it is a stable `jit` cache key too."""
        from ..flow import CompositeLoss

        x, y = self.data["x"], self.data["y"]
        return CompositeLoss(lambda p: self.apply_fn(p, x), lambda out: self.loss_fn(out, y))

    def loss(self, params: PyTree) -> Float[Array, ""]:
        """Full-batch training loss."""
        return self.loss_fn(self.apply_fn(params, self.data["x"]), self.data["y"])

    def metrics(self, params: PyTree) -> dict[str, Float[Array, ""]]:
        """Training loss and accuracy, and test accuracy where there is a test split."""
        out = self.apply_fn(params, self.data["x"])
        metrics = {
            "loss": self.loss_fn(out, self.data["y"]),
            "accuracy": self.accuracy_fn(out, self.data["y"]),
        }
        if "x_test" in self.data:
            test_out = self.apply_fn(params, self.data["x_test"])
            metrics["test_accuracy"] = self.accuracy_fn(test_out, self.data["y_test"])
        return metrics

    @property
    def num_params(self) -> int:
        shapes = jax.eval_shape(self.init_fn, jax.random.key(0))
        return sum(int(jnp.size(jnp.zeros(s.shape))) for s in jax.tree.leaves(shapes))
