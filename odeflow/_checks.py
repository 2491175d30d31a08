"""Argument checks shared by the public entry points. Each raises at trace time with a
message that names the fix; values that are tracers (inside jit) are left alone."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def static_scalar(name: str, *, optional: bool = False):
    """A converter for a module's static number: a Python, NumPy or concrete JAX
    scalar becomes a Python float (`None` passes when `optional`), so that no array
    is kept as static; a traced value or an array of several entries is an error
    that names the fix."""

    def convert(value):
        if value is None and optional:
            return None
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                f"{name} is a fixed setting of the module and cannot be a traced value "
                "(an argument of a jitted or differentiated function); pass a Python or "
                "concrete JAX number, and build the module outside the transformation")
        if isinstance(value, bool) or np.ndim(value) != 0:
            raise TypeError(f"{name} must be a number, got {value!r}; e.g. {name}=1.0")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number, got {value!r}; e.g. {name}=1.0") from None

    return convert


def check_tolerances(rtol, atol) -> None:
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if tol is None or not _concrete(tol):
            continue
        value = float(tol)
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {value}; e.g. {name}=1e-6")


def check_interval(t0, t1, *, forward: bool = False) -> None:
    """Finite, distinct ends; `t1 < t0` integrates backwards unless `forward`."""
    if _concrete(t0) and _concrete(t1):
        if not (np.isfinite(float(t0)) and np.isfinite(float(t1))):
            raise ValueError(f"t0 and t1 must be finite, got t0={t0}, t1={t1}")
        if forward and float(t1) <= float(t0):
            raise ValueError(f"t1 must be greater than t0, got t0={t0}, t1={t1}; swap them or raise t1")
        if float(t1) == float(t0):
            raise ValueError(f"t0 and t1 must differ, got t0 = t1 = {t0}; an empty interval has no solution "
                             "to compute")


def check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_float_tree(tree, name: str) -> None:
    """Every array leaf is floating point, and (when concrete) finite. Leaves that are
    not arrays (an equinox model's activation functions) are left alone."""
    leaves = [x for x in jax.tree_util.tree_leaves(tree) if isinstance(x, (jax.Array, np.ndarray))]
    if not leaves:
        raise ValueError(f"{name} has no array leaves; pass a pytree of float arrays")
    for leaf in leaves:
        dtype = jnp.result_type(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(
                f"{name} must hold floating-point arrays, got dtype {dtype}; convert with "
                f".astype(jnp.float32) or jnp.float64"
            )
        if _concrete(leaf) and not np.all(np.isfinite(np.asarray(leaf))):
            raise ValueError(f"{name} contains NaN or inf; check the initialisation or the data")


def check_step(dt0, t0=0.0, t1=1.0) -> None:
    """`dt0` is `None` or a finite step pointing from `t0` towards `t1`."""
    if dt0 is None or not (_concrete(dt0) and _concrete(t0) and _concrete(t1)):
        return
    value = float(dt0)
    backwards = float(t1) < float(t0)
    if not np.isfinite(value) or value == 0 or (value < 0) != backwards:
        sign = "negative (t1 < t0)" if backwards else "positive (t1 > t0)"
        example = "-0.01" if backwards else "0.01"
        raise ValueError(f"dt0 must be a finite {sign} step, got {value}; e.g. dt0={example}, "
                         "or dt0=None to choose it automatically")


def check_vector_field(vector_field, t0, y0, args) -> None:
    """`vector_field(t0, y0, args)` returns a pytree shaped like `y0` (checked on
    shapes only, by tracing it once without running it)."""
    shape = lambda tree: jax.tree.map(lambda x: tuple(jnp.shape(x)), tree)
    try:
        out = eqx.filter_eval_shape(vector_field, t0, y0, args)
    except Exception as err:
        err.add_note(f"odeflow: raised by vector_field(t0, y0, args) with y0 of shapes {shape(y0)}; "
                     "the field must accept the state's shapes")
        raise
    if jax.tree.structure(out) != jax.tree.structure(y0) or shape(out) != shape(y0):
        raise ValueError(f"vector_field returns shapes {shape(out)} for a state of shapes "
                         f"{shape(y0)}; dy/dt must have the structure and shapes of y0")
