"""Command-line interface (`odeflow ...`)."""

from ._main import entry_point, main

__all__ = ["entry_point", "main"]
