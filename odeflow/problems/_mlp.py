"""Multilayer perceptrons as dicts of arrays, and the losses the tasks use."""

from __future__ import annotations

import jax
import jax.numpy as jnp

ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}


def init_mlp(key, sizes, dtype, scale: str = "glorot"):
    """Weights `W{i}` (fan_in, fan_out) and biases `b{i}`.

    `scale="glorot"`: normal with variance 2/(fan_in + fan_out), zero biases.
    `scale="uniform"`: uniform on [-1, 1] for weights and biases, the classic
    initialisation of the small sigmoid problems (Rumelhart et al. 1986)."""
    params = {}
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        kw, kb = keys[2 * i], keys[2 * i + 1]
        if scale == "uniform":
            params[f"W{i}"] = jax.random.uniform(kw, (fan_in, fan_out), dtype, -1.0, 1.0)
            params[f"b{i}"] = jax.random.uniform(kb, (fan_out,), dtype, -1.0, 1.0)
        else:
            std = jnp.sqrt(2.0 / (fan_in + fan_out)).astype(dtype)
            params[f"W{i}"] = std * jax.random.normal(kw, (fan_in, fan_out), dtype)
            params[f"b{i}"] = jnp.zeros((fan_out,), dtype)
    return params


def apply_mlp(params, x, hidden: str, output: str | None):
    """Forward pass; `output=None` returns logits."""
    layers = len(params) // 2
    for i in range(layers):
        x = x @ params[f"W{i}"] + params[f"b{i}"]
        if i < layers - 1:
            x = ACTIVATIONS[hidden](x)
    return x if output is None else ACTIVATIONS[output](x)


def sum_of_squares(out, y):
    """Owens & Filkin's least-squares error: half the summed squared error."""
    return 0.5 * jnp.sum((out - y) ** 2)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy with integer labels."""
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


def binary_cross_entropy(logits, labels):
    """Mean sigmoid cross-entropy, `logits` of shape (n, 1), labels in {0, 1}."""
    z = logits[:, 0]
    return jnp.mean(jnp.logaddexp(0.0, z) - labels * z)


def threshold_accuracy(out, y):
    """Patterns whose every output is on the right side of 0.5."""
    return jnp.mean(jnp.all((out > 0.5) == (y > 0.5), axis=-1))


def argmax_accuracy(logits, labels):
    return jnp.mean(jnp.argmax(logits, axis=-1) == labels)


def sign_accuracy(logits, labels):
    return jnp.mean((logits[:, 0] > 0) == (labels > 0.5))
