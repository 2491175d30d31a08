"""Training tasks by name: `get_task("parity4")`, `task_names()`."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ._tasks import digits, encoder, mnist1d, moons, parity4, xor
from ._task import Task

_TASKS = {
    "xor": xor,
    "encoder": encoder,
    "parity4": parity4,
    "digits": digits,
    "moons": moons,
    "mnist1d": mnist1d,
}


def registered_name(name) -> str:
    """The registered name of `name`, whatever its case and separators ("MNIST-1D" is
    "mnist1d"); a `ValueError` naming the tasks if there is none."""
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    if key not in _TASKS:
        raise ValueError(f"unknown task {name!r}; use one of: {', '.join(_TASKS)}")
    return key


def task_names() -> list[str]:
    """Registered task names."""
    return list(_TASKS)


def get_task(name: str, dtype=jnp.float64, **options) -> Task:
    """Build a registered task with data and parameters of `dtype`; names match
    whatever their case (`"MNIST1D"` is `"mnist1d"`). The same name, dtype and
    options give the same `Task` object (built once per process and kept), so that
    jitted work on `task.loss` compiles once.

    float64 needs `jax.config.update("jax_enable_x64", True)` first; without it a
    `ValueError` says so rather than silently training in float32."""
    key = registered_name(name)
    try:
        hash(cache_key := (key, jnp.dtype(dtype), tuple(sorted(options.items()))))
    except TypeError:  # an unhashable option or a bad dtype: built afresh (and checked there)
        return _build_task(key, dtype, options)
    return _cached_task(*cache_key)


@functools.lru_cache(maxsize=16)
def _cached_task(key, dtype, options):
    return _build_task(key, dtype, dict(options))


def _build_task(name: str, dtype, options) -> Task:
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a float type, got {dtype}")
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "float64 needs jax.config.update('jax_enable_x64', True) before use; "
            "or pass dtype=jnp.float32"
        )
    return _TASKS[name](dtype=dtype, **options)

