"""The progress of a `compare` run, kept so that an interrupted run can resume.

Each finished unit of work (one method's tuning, one timed run of a method on a
seed, one scipy run) is stored under a key; with a file, the whole journal is
rewritten atomically after each unit (it is small: thinned histories), so a run
killed at any moment leaves every finished unit on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax

from .._distributed import broadcast_json
from .._io import atomic_write_text


class Journal:
    """Finished units of one `compare` configuration, in memory or in a JSON file.

    With `path` and `resume=True` an existing file is loaded (its configuration must
    equal `config`); without `resume` an existing file is an error, so that no run
    overwrites another's progress by accident. In a run of several processes only
    process 0 touches the file; the others receive what it loaded."""

    def __init__(self, config: dict, path: str | os.PathLike | None = None, resume: bool = False):
        self.path = None if path is None else Path(path)
        self.config = json.loads(json.dumps(config))  # as it reads back from disk
        # in a run of several processes, process 0 alone reads and writes the file
        # and shares what it read (or the error), so all skip the same work
        self.writer = jax.process_index() == 0
        loaded = {"units": {}, "error": None}
        if self.writer:
            try:
                loaded["units"] = self._load(resume)
            except ValueError as err:
                loaded["error"] = str(err)
        loaded = broadcast_json(loaded)
        if loaded["error"] is not None:
            raise ValueError(loaded["error"])
        self.units: dict[str, dict] = loaded["units"]

    def _load(self, resume: bool) -> dict:
        if self.path is None or not self.path.exists():
            return {}
        if not resume:
            raise ValueError(f"{self.path} holds the progress of an earlier run; resume it "
                             "(resume=True, --resume) or delete the file")
        try:
            saved = json.loads(self.path.read_text())
            config_saved, units = saved["config"], saved["units"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{self.path} is not a readable compare journal ({type(e).__name__}: "
                             f"{e}); delete it to start afresh") from e
        if config_saved != self.config:
            differ = sorted(k for k in set(config_saved) | set(self.config)
                            if config_saved.get(k) != self.config.get(k))
            raise ValueError(f"{self.path} was written by a run with other settings ({', '.join(differ)} "
                             "differ); resume with the same options or delete the file")
        return units

    def __contains__(self, key: str) -> bool:
        return key in self.units

    def __getitem__(self, key: str) -> dict:
        return self.units[key]

    def __setitem__(self, key: str, value: dict) -> None:
        self.update({key: value})

    def update(self, units: dict[str, dict]) -> None:
        """Store `units` (written to the file at once when any is new)."""
        units = json.loads(json.dumps(units))  # the same whether resumed or not
        if all(self.units.get(k) == v for k, v in units.items()):
            return
        self.units.update(units)
        if self.path is not None and self.writer:
            atomic_write_text(self.path, json.dumps({"config": self.config, "units": self.units}))

    def remove(self) -> None:
        """Delete the file (once the run's report is written)."""
        if self.path is not None and self.writer:
            self.path.unlink(missing_ok=True)
