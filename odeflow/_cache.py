"""Reuse of compiled code across calls: a structural key for the functions and
optimizers a user passes, and a small least-recently-used cache keyed by it.

`jax.jit` caches by function identity, so `fit(model, loss(), data,
optimizer=optax.adam(1e-3))` run twice would compile twice: each call builds new
closures. Two closures with the same code, defaults and captured values compute
the same thing, so they get the same key here; anything else (arrays, user
objects) is keyed by identity and held, so an identity is never reused."""

from __future__ import annotations

import collections
import functools
import types
from typing import Any, Callable, Hashable

_MAX_DEPTH = 12


class _Identity:
    """Equal only to a wrapper of the same object; keeps the object alive."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.obj is self.obj


def structural_key(obj: Any, _depth: int = 0) -> Hashable:
    """Functions by code, defaults and captured values (recursively), tuples, lists
    and dicts by content, numbers, strings and types by value, other objects by
    their own hash or by identity."""
    if _depth > _MAX_DEPTH:
        return _Identity(obj)
    key = functools.partial(structural_key, _depth=_depth + 1)
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, type)):
        return (type(obj), obj)
    if isinstance(obj, types.FunctionType):
        cells = tuple(key(c.cell_contents) if _filled(c) else "<empty>" for c in obj.__closure__ or ())
        return ("function", obj.__code__, key(obj.__defaults__), key(obj.__kwdefaults__), cells,
                obj.__module__)
    if isinstance(obj, types.MethodType):
        return ("method", key(obj.__func__), key(obj.__self__))
    if isinstance(obj, functools.partial):
        return ("partial", key(obj.func), key(obj.args), key(obj.keywords))
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(key(x) for x in obj))
    if isinstance(obj, dict):
        return (dict, tuple((key(k), key(v)) for k, v in obj.items()))
    if isinstance(obj, types.BuiltinFunctionType):
        return ("builtin", obj)
    try:
        hash(obj)
    except TypeError:
        return _Identity(obj)
    return ("hashable", type(obj), obj) if _value_hash(obj) else _Identity(obj)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _value_hash(obj) -> bool:
    """Objects whose class defines equality (dataclasses, equinox modules without
    arrays, enums) are keyed by value; plain objects by identity."""
    return type(obj).__eq__ is not object.__eq__


class CompileCache:
    """At most `size` built values, least recently used dropped first."""

    def __init__(self, size: int = 16):
        self.size, self._values = size, collections.OrderedDict()

    def get(self, parts: tuple, build: Callable[[], Any]) -> Any:
        key = structural_key(parts)
        if key in self._values:
            self._values.move_to_end(key)
            return self._values[key]
        value = self._values[key] = build()
        if len(self._values) > self.size:
            self._values.popitem(last=False)
        return value


class Keyed:
    """A callable that hashes and compares by `structural_key`: as a static argument
    of `jax.jit` (or a static field of a diffrax term), two closures built again from
    the same code and values share one compilation."""

    __slots__ = ("fn", "_key", "_hash")

    def __init__(self, fn):
        self.fn, self._key = fn, structural_key(fn)
        self._hash = hash(self._key)

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return isinstance(other, Keyed) and other._key == self._key

    def __repr__(self):
        return repr(self.fn)


def keyed(obj):
    """`obj` with its plain Python functions (also inside an optax transformation's
    named tuple) wrapped in `Keyed`; modules, arrays and other objects unchanged."""
    if isinstance(obj, (types.FunctionType, types.MethodType, functools.partial)):
        try:
            return Keyed(obj)
        except TypeError:  # something inside cannot be hashed at all
            return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # optax's GradientTransformation
        return type(obj)(*(keyed(x) for x in obj))
    return obj
