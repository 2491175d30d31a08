"""Losses and evaluation for classifiers with ODE blocks (`odeflow.nn.ODENet`,
`ResNet`, `RKNet`, or any model with `solve(x) -> (logits, stats)`)."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import check_positive_int


def classification_loss(*, kinetic: float = 0.0, jacobian: float = 0.0):
    """A `loss_fn(model, batch, key)` for `odeflow.fit`: mean cross-entropy of
    `model.solve(batch["x"])` against integer labels `batch["y"]`, plus `kinetic`
    times the kinetic energy and `jacobian` times the Jacobian-norm estimate per
    sample (Finlay et al. 2020; needs `model.solve_penalised`). Metrics:
    `cross_entropy`, `accuracy`, `nfe` (forward), and the penalties when used."""
    for name, weight in (("kinetic", kinetic), ("jacobian", jacobian)):
        if not (np.isfinite(weight) and weight >= 0):
            raise ValueError(f"{name} must be a non-negative weight, got {weight}")
    penalised = kinetic > 0 or jacobian > 0

    def loss_fn(model, batch, key):
        x, y = batch["x"], batch["y"]
        metrics = {}
        if penalised:
            if not hasattr(model, "solve_penalised"):
                raise TypeError(f"{type(model).__name__} has no solve_penalised; the kinetic and "
                                "Jacobian penalties need an ODE-block model such as odeflow.nn.ODENet")
            logits, stats, pen = model.solve_penalised(x, key=key)
            metrics["kinetic"], metrics["jacobian"] = pen.kinetic / len(x), pen.jacobian / len(x)
            penalty = kinetic * metrics["kinetic"] + jacobian * metrics["jacobian"]
        else:
            logits, stats = model.solve(x)
            penalty = 0.0
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        metrics.update(cross_entropy=ce, accuracy=jnp.mean(jnp.argmax(logits, -1) == y), nfe=jnp.max(stats.nfe))  # per-sample blocks: what the batch waits for
        return ce + penalty, metrics

    return loss_fn


@eqx.filter_jit
def _evaluate_chunk(model, x, y):
    logits, stats = model.solve(x)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).sum()
    return ce, jnp.sum(jnp.argmax(logits, -1) == y), jnp.max(stats.nfe)


def evaluate_classifier(model, x, y, *, batch_size: int = 256, prefix: str = "test") -> dict:
    """`{prefix}_loss` (mean cross-entropy), `{prefix}_accuracy` and `{prefix}_nfe`
    (mean forward NFE per chunk of `batch_size`) over the whole of `x`, `y`. The
    last partial chunk is evaluated too (one more compilation)."""
    check_positive_int(batch_size, "batch_size")
    x, y = jnp.asarray(x), jnp.asarray(y)
    totals, nfes = np.zeros(2), []
    for i in range(0, len(x), batch_size):
        ce, correct, nfe = _evaluate_chunk(model, x[i:i + batch_size], y[i:i + batch_size])
        totals += (float(ce), float(correct))
        nfes.append(int(nfe))
    return {f"{prefix}_loss": float(totals[0] / len(x)), f"{prefix}_accuracy": float(totals[1] / len(x)),
            f"{prefix}_nfe": float(np.mean(nfes))}


def sequence_loss(times):
    """A `loss_fn(model, batch, key)` for time-series models with a
    `loss(times, values, mask, key=...)` method (`odeflow.nn.LatentODE`,
    `RNNBaseline`): `batch` holds `"values"` `(batch, T, d)` and `"mask"`
    `(batch, T)` on the shared `times`."""
    times = jnp.asarray(times)

    def loss_fn(model, batch, key):
        return model.loss(times, batch["values"], batch["mask"], key=key)

    return loss_fn
