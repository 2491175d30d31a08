"""Checkpoints of a training run: the model and optimizer state serialised by
equinox (`state.eqx`) and the run's position and history (`meta.json`), each
written to a temporary file and renamed into place, so an interrupted write never
leaves a half-written checkpoint."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx

STATE = "state.eqx"
META = "meta.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(folder: str | os.PathLike, state: Any, meta: dict) -> None:
    """Write `state` (a pytree: model, optimizer state) and `meta` (JSON) to `folder`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the checkpoint folder {folder}: {e}; choose a writable path") from e
    _atomic_write(folder / STATE, lambda f: eqx.tree_serialise_leaves(f, state))
    _atomic_write(folder / META, lambda f: f.write(json.dumps(meta).encode()))


def has_checkpoint(folder: str | os.PathLike | None) -> bool:
    return folder is not None and (Path(folder) / META).is_file() and (Path(folder) / STATE).is_file()


def load_checkpoint(folder: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """`(state, meta)` from `folder`; `like` is a pytree of the same structure as the
    saved state (e.g. a freshly initialised model and optimizer state)."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / META).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"the checkpoint in {folder} is unreadable ({e}); delete it or pass "
                         "resume=False") from e
    try:
        with open(folder / STATE, "rb") as f:
            state = eqx.tree_deserialise_leaves(f, like)
    except Exception as e:  # equinox/numpy raise several types for a mismatched file
        raise ValueError(f"the checkpoint in {folder} does not match this model and optimizer "
                         f"({type(e).__name__}: {e}); delete it or pass resume=False") from e
    return state, meta
