"""Image and signal classifiers of the same shape with three different bodies
(Chen et al. 2018, section 3): `ODENet` (one adaptive ODE block), `ResNet` (a stack
of residual blocks) and `RKNet` (the ODE block discretised by a fixed-step
Runge-Kutta method and backpropagated through). Each is a downsampling stem, the
body, and a head; `kind="mlp"` works on flattened inputs, `kind="conv"` and
`kind="strided"` on images `(channels, height, width)` or signals `(channels, length)`:

- `"conv"`: a 3-wide convolution, ReLU and a stride-2 convolution before the body; a
  global mean over the positions and a linear map after it (the paper's ODE-Net).
- `"strided"`: the MNIST-1D reference CNN (Greydanus 2020) with the body after its
  first layer: a stride-2 convolution (5 wide on signals, 3x3 on images) and ReLU
  before the body; two 3-wide stride-2 convolutions with ReLU and a linear map of the
  flattened features after it. `CNN` is this network without a body.

The whole minibatch is one ODE state, so the adaptive solver takes one step size
for all of it (as torchdiffeq's ODE-Net does); NFE is per minibatch.
"""

from __future__ import annotations

import abc
import itertools
from typing import Any, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .._checks import check_positive_int
from ..solvers import SolverStats
from ._block import ODEBlock
from ._penalties import Penalties, solve_penalised

KINDS = ("mlp", "conv", "strided")


class MLPField(eqx.Module):
    """`f(t, h) = W2 tanh(W1 [h, t] + b1) + b2` on a batch `h` `(batch, width)`;
    depth `t` enters as an input feature."""

    inner: eqx.nn.Linear
    outer: eqx.nn.Linear

    def __init__(self, width: int, hidden: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.inner = eqx.nn.Linear(width + 1, hidden, key=k1)
        self.outer = eqx.nn.Linear(hidden, width, key=k2)

    def __call__(self, t, h: Array, args: Any = None) -> Array:
        def one(x):
            z = jnp.concatenate([x, jnp.full((1,), t, x.dtype)])
            return self.outer(jnp.tanh(self.inner(z)))

        return jax.vmap(one)(h)


def same_convolution(conv: eqx.nn.Conv, x: Array) -> Array:
    """`conv` (3-wide kernel, padding 1, stride 1) applied to a batch `x`
    `(batch, channels, *spatial)`, computed as one matrix product of the shifted
    copies of `x` (channels last) with the kernel: the same numbers as
    `jax.vmap(conv)(x)` to rounding.

    XLA on CPU runs a convolution inside a while loop (an adaptive ODE solve) about
    4x slower than the same convolution unrolled; as a matrix product the field
    costs the same in a loop as outside it, 2.5x to 4.5x less than the convolution
    in the loop for the ODE-Nets' fields (forward and gradient)."""
    n = conv.num_spatial_dims
    padding = conv.padding if isinstance(conv.padding, str) else tuple(map(tuple, conv.padding))
    same = (tuple(conv.kernel_size) == (3,) * n and tuple(conv.stride) == (1,) * n
            and tuple(conv.dilation) == (1,) * n and conv.groups == 1
            and padding in (((1, 1),) * n, "SAME") and getattr(conv, "padding_mode", "ZEROS") == "ZEROS")
    if not same:
        raise ValueError("same_convolution needs a convolution with a 3-wide kernel, stride 1, "
                         "dilation 1, one group and zero padding 1 (eqx.nn.Conv(..., 3, padding=1)); "
                         "apply other convolutions with jax.vmap(conv)")
    if x.ndim != n + 2 or x.shape[1] != conv.in_channels:
        raise ValueError(f"same_convolution expects a batch (batch, {conv.in_channels}, ...) with {n} "
                         f"spatial axes, got shape {x.shape}")
    spatial = x.shape[2:]
    last = jnp.moveaxis(x, 1, -1)
    padded = jnp.pad(last, [(0, 0)] + [(1, 1)] * n + [(0, 0)])
    shifted = [padded[(slice(None),) + tuple(slice(o, o + size) for o, size in zip(offset, spatial))]
               for offset in itertools.product(range(3), repeat=n)]
    patches = jnp.stack(shifted, axis=-1)  # (batch, *spatial, channels, kernel offsets)
    kernel = jnp.moveaxis(conv.weight.reshape(conv.out_channels, conv.in_channels, -1), 0, -1)
    out = jnp.einsum("b...ck,cko->b...o", patches, kernel)
    if conv.bias is not None:
        out = out + conv.bias.reshape(conv.out_channels)
    return jnp.moveaxis(out, -1, 1)


class ConvField(eqx.Module):
    """Two 3-wide convolutions with tanh between them on a batch
    `(batch, width, *spatial)`; depth `t` enters as an extra constant channel before
    each convolution (the paper's concatenated-time convolution). The convolutions
    run as matrix products (`same_convolution`), which XLA on CPU runs far faster
    inside an adaptive solve's loop."""

    conv1: eqx.nn.Conv
    conv2: eqx.nn.Conv

    def __init__(self, width: int, spatial_dims: int, *, key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        conv = lambda k: eqx.nn.Conv(spatial_dims, width + 1, width, 3, padding=1, key=k)
        self.conv1, self.conv2 = conv(k1), conv(k2)

    def __call__(self, t, h: Array, args: Any = None) -> Array:
        def with_time(x):
            return jnp.concatenate([x, jnp.full(x.shape[:1] + (1,) + x.shape[2:], t, x.dtype)], axis=1)

        hidden = jnp.tanh(same_convolution(self.conv1, with_time(h)))
        return same_convolution(self.conv2, with_time(hidden))


def _strided_conv(in_shape, c_in, c_out, kernel, key):
    return eqx.nn.Conv(len(in_shape) - 1, c_in, c_out, kernel, stride=2, padding=1, key=key)


def _first_kernel(in_shape):
    """The strided stem's kernel: 5 wide on signals (MNIST-1D's CNN), 3x3 on images."""
    return 5 if len(in_shape) == 2 else 3


def _strided_positions(in_shape) -> int:
    """Positions left after the strided stem and the head's two stride-2 convolutions."""
    count = 1
    for size in in_shape[1:]:
        for kernel in (_first_kernel(in_shape), 3, 3):
            size = (size + 2 - kernel) // 2 + 1
        if size < 1:
            raise ValueError(f"kind='strided' needs each spatial size to survive three stride-2 "
                             f"convolutions, got in_shape {tuple(in_shape)}; use kind='conv'")
        count *= size
    return count


class _Stem(eqx.Module):
    """Downsampling: MLP `Linear(prod(in_shape), width)` + tanh; conv: a 3-wide
    convolution to `width` channels, ReLU, and a stride-2 convolution (halves each
    spatial size); strided: one stride-2 convolution and ReLU."""

    layers: tuple
    kind: str = eqx.field(static=True)

    def __init__(self, kind, in_shape, width, *, key):
        k1, k2 = jax.random.split(key)
        self.kind = kind
        if kind == "mlp":
            self.layers = (eqx.nn.Linear(int(np.prod(in_shape)), width, key=k1),)
        elif kind == "strided":
            self.layers = (_strided_conv(in_shape, in_shape[0], width, _first_kernel(in_shape), k1),)
        else:
            n = len(in_shape) - 1
            self.layers = (eqx.nn.Conv(n, in_shape[0], width, 3, padding=1, key=k1),
                           eqx.nn.Conv(n, width, width, 4, stride=2, padding=1, key=k2))

    def __call__(self, x):
        if self.kind == "mlp":
            return jnp.tanh(self.layers[0](x.reshape(-1)))
        if self.kind == "strided":
            return jax.nn.relu(self.layers[0](x))
        return self.layers[1](jax.nn.relu(self.layers[0](x)))


class _Head(eqx.Module):
    """conv: global mean over the spatial axes and a linear map to the logits;
    strided: two stride-2 convolutions with ReLU and a linear map of the flattened
    features; mlp: a linear map."""

    convs: tuple
    linear: eqx.nn.Linear
    kind: str = eqx.field(static=True)

    def __init__(self, kind, in_shape, width, n_classes, *, key):
        self.kind = kind
        if kind == "strided":
            k1, k2, key = jax.random.split(key, 3)
            self.convs = tuple(_strided_conv(in_shape, width, width, 3, k) for k in (k1, k2))
            self.linear = eqx.nn.Linear(_strided_positions(in_shape) * width, n_classes, key=key)
        else:
            self.convs = ()
            self.linear = eqx.nn.Linear(width, n_classes, key=key)

    def __call__(self, h):
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        if self.kind == "conv":
            h = h.reshape(h.shape[0], -1).mean(axis=1)
        return self.linear(h.reshape(-1))


def _check(kind, in_shape, n_classes, width):
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    check_positive_int(n_classes, "n_classes")
    check_positive_int(width, "width")
    in_shape = tuple(int(s) for s in in_shape)
    if kind != "mlp" and len(in_shape) not in (2, 3):
        raise ValueError(f"kind={kind!r} needs in_shape (channels, length) or (channels, height, "
                         f"width), got {in_shape}; use kind='mlp' for flat inputs")
    if kind == "strided":
        _strided_positions(in_shape)
    return in_shape


def _field(kind, in_shape, width, hidden, key):
    if kind == "mlp":
        return MLPField(width, hidden, key=key)
    return ConvField(width, len(in_shape) - 1, key=key)


class AbstractClassifier(eqx.Module):
    """Stem, body, head on a minibatch `x` `(batch, *in_shape)`. `model(x)` returns
    logits `(batch, n_classes)`; `model.solve(x)` also the body's `SolverStats`."""

    stem: eqx.AbstractVar[_Stem]
    head: eqx.AbstractVar[_Head]
    in_shape: eqx.AbstractVar[tuple]

    @abc.abstractmethod
    def _body(self, h) -> tuple[Array, SolverStats]:
        """The body on the stem's features: `(features, stats)`."""

    def _features(self, x):
        x = jnp.asarray(x)
        if x.shape[1:] != self.in_shape:
            raise ValueError(f"{type(self).__name__} expects a batch of shape (batch, "
                             f"{', '.join(map(str, self.in_shape))}), got {x.shape}")
        return jax.vmap(self.stem)(x)

    def __call__(self, x: Array) -> Array:
        return self.solve(x)[0]

    def solve(self, x: Array) -> tuple[Array, SolverStats]:
        h, stats = self._body(self._features(x))
        return jax.vmap(self.head)(h), stats


class AbstractODENet(AbstractClassifier):
    """A classifier whose body is one `ODEBlock`."""

    block: eqx.AbstractVar[ODEBlock]

    def _body(self, h):
        return self.block.solve(h)

    def solve_penalised(self, x: Array, *, key: PRNGKeyArray) -> tuple[Array, SolverStats, Penalties]:
        """Logits, stats, and the block's kinetic and Jacobian penalties
        (`odeflow.nn.solve_penalised`)."""
        h, stats, penalties = solve_penalised(self.block, self._features(x), key=key)
        return jax.vmap(self.head)(h), stats, penalties


def _ode_parts(kind, in_shape, n_classes, width, hidden, key, block_options):
    in_shape = _check(kind, in_shape, n_classes, width)
    k1, k2, k3 = jax.random.split(key, 3)
    stem = _Stem(kind, in_shape, width, key=k1)
    block = ODEBlock(_field(kind, in_shape, width, hidden, k2), **block_options)
    return in_shape, stem, block, _Head(kind, in_shape, width, n_classes, key=k3)


class ODENet(AbstractODENet):
    """Stem, one adaptive `ODEBlock` on [0, 1] (`solver`, `rtol`, `atol`, `gradient`,
    ... as in `ODEBlock`), head. `hidden` is the MLP field's hidden width (the conv
    field keeps `width` channels)."""

    stem: _Stem
    block: ODEBlock
    head: _Head
    in_shape: tuple = eqx.field(static=True)

    def __init__(self, in_shape: Sequence[int], n_classes: int, *, key: PRNGKeyArray,
                 kind: str = "mlp", width: int = 32, hidden: int = 64, **block_options):
        self.in_shape, self.stem, self.block, self.head = _ode_parts(
            kind, in_shape, n_classes, width, hidden, key, block_options)


class RKNet(AbstractODENet):
    """`ODENet` with the block discretised by `steps` fixed steps of a Runge-Kutta
    method (`method`: "rk4", "euler", "heun", "midpoint", ...) and backpropagated
    through (`gradient`): the paper's RK-Net. Same parameters as the ODE-Net."""

    stem: _Stem
    block: ODEBlock
    head: _Head
    in_shape: tuple = eqx.field(static=True)

    def __init__(self, in_shape: Sequence[int], n_classes: int, *, key: PRNGKeyArray,
                 kind: str = "mlp", width: int = 32, hidden: int = 64, steps: int = 4,
                 method: str = "rk4", gradient: str = "checkpoint"):
        check_positive_int(steps, "steps")
        options = dict(solver=method, dt0=1.0 / steps, gradient=gradient, max_steps=steps)
        self.in_shape, self.stem, self.block, self.head = _ode_parts(
            kind, in_shape, n_classes, width, hidden, key, options)


class _Residual(eqx.Module):
    field: eqx.Module

    def __call__(self, h):
        return h + self.field(0.0, h)


class ResNet(AbstractClassifier):
    """Stem, `depth` residual blocks `h + g_i(h)` (each `g_i` the ODE-Net's field
    architecture with its own parameters, time fixed at 0), head: the paper's
    ResNet baseline (6 blocks). Its stats count one evaluation per block."""

    stem: _Stem
    blocks: tuple
    head: _Head
    in_shape: tuple = eqx.field(static=True)

    def __init__(self, in_shape: Sequence[int], n_classes: int, *, key: PRNGKeyArray,
                 kind: str = "mlp", width: int = 32, hidden: int = 64, depth: int = 6):
        check_positive_int(depth, "depth")
        self.in_shape = _check(kind, in_shape, n_classes, width)
        k1, k2, k3 = jax.random.split(key, 3)
        self.stem = _Stem(kind, self.in_shape, width, key=k1)
        self.blocks = tuple(_Residual(_field(kind, self.in_shape, width, hidden, k))
                            for k in jax.random.split(k2, depth))
        self.head = _Head(kind, self.in_shape, width, n_classes, key=k3)

    def _body(self, h):
        for block in self.blocks:
            h = block(h)
        n = len(self.blocks)
        return h, SolverStats.make(nfe=n, num_steps=n, num_accepted=n)


class CNN(AbstractClassifier):
    """Stem and head with no body: with `kind="strided"` (the default) the MNIST-1D
    reference CNN (Greydanus 2020; 5,210 parameters at `width=25` on MNIST-1D's
    `(1, 40)` signals), the baseline for `ODENet(kind="strided")` and
    `ResNet(kind="strided")`; with `kind="conv"` the ODE-Net's stem and head alone.
    Its stats count no evaluations."""

    stem: _Stem
    head: _Head
    in_shape: tuple = eqx.field(static=True)

    def __init__(self, in_shape: Sequence[int], n_classes: int, *, key: PRNGKeyArray,
                 kind: str = "strided", width: int = 25):
        if kind == "mlp":
            raise ValueError("CNN is convolutional: use kind='strided' or kind='conv' (for a "
                             "network on flat inputs, use ResNet(kind='mlp') or an eqx.nn.MLP)")
        self.in_shape = _check(kind, in_shape, n_classes, width)
        k1, _, k3 = jax.random.split(key, 3)
        self.stem = _Stem(kind, self.in_shape, width, key=k1)
        self.head = _Head(kind, self.in_shape, width, n_classes, key=k3)

    def _body(self, h):
        return h, SolverStats.make(nfe=0, num_steps=0, num_accepted=0)


def parameter_count(model) -> int:
    """Number of trainable scalars (float array entries) in `model`."""
    return sum(x.size for x in jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
