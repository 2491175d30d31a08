"""Checkpoints of a training run: the model and optimizer state serialised by
equinox (`state-<step>.eqx`) and the run's position and history (`meta.json`).

Both are written atomically (`odeflow._io`), the state first under a name of its
own, then `meta.json`, which names it: renaming `meta.json` into place is the one
commit point, so a run killed at any moment leaves the previous checkpoint or the
new one whole, never a state from one step with the history of another."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import equinox as eqx

from .._io import atomic_write, atomic_write_text

META = "meta.json"


def _state_name(step: int) -> str:
    return f"state-{step:09d}.eqx"


def save_checkpoint(folder: str | os.PathLike, state: Any, meta: dict) -> None:
    """Write `state` (a pytree: model, optimizer state) and `meta` (JSON, with its
    `"step"`) to `folder`, then remove the states no checkpoint names any more."""
    folder = Path(folder)  # `fit` checks that it is writable before any work
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the checkpoint folder {folder}: {e}; choose a writable path") from e
    name = _state_name(int(meta["step"]))
    atomic_write(folder / name, lambda f: eqx.tree_serialise_leaves(f, state))
    atomic_write_text(folder / META, json.dumps(dict(meta, state_file=name)))
    for old in folder.glob("state-*.eqx"):
        if old.name != name:
            old.unlink(missing_ok=True)


def has_checkpoint(folder: str | os.PathLike | None) -> bool:
    return folder is not None and (Path(folder) / META).is_file()


def load_checkpoint(folder: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """`(state, meta)` from `folder`; `like` is a pytree of the same structure as the
    saved state (e.g. a freshly initialised model and optimizer state)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
        state_file = folder / meta["state_file"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"the checkpoint in {folder} is unreadable ({type(e).__name__}: {e}); "
                         "delete it or pass resume=False") from e
    try:
        with open(state_file, "rb") as f:
            state = eqx.tree_deserialise_leaves(f, like)
    except Exception as e:  # equinox/numpy raise several types for a mismatched file
        raise ValueError(f"the checkpoint in {folder} does not match this model and optimizer "
                         f"({type(e).__name__}: {e}); delete it or pass resume=False") from e
    return state, meta
