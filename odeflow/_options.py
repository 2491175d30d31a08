"""Options are objects; their names are shorthand at the edge (registry, CLI)."""

from __future__ import annotations


def as_option(value, base: type, names: dict, what: str, instead: str):
    """`value` if it is a `base` instance, else the default instance of the class
    `names[value]`; anything else raises naming `instead` and the valid names."""
    if isinstance(value, base):
        return value
    if isinstance(value, str) and value in names:
        return names[value]()
    raise ValueError(f"unknown {what} {value!r}; use {instead}, or one of the names "
                     f"{', '.join(names)}")
