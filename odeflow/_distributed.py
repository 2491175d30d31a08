"""Several hosts through JAX's own machinery: `jax.distributed.initialize`, with the
coordinator address, process count and process id from arguments (the CLI's
`--coordinator-address`, `--num-processes`, `--process-id`) or the environment
(`ODEFLOW_COORDINATOR_ADDRESS`, `ODEFLOW_NUM_PROCESSES`, `ODEFLOW_PROCESS_ID`).
With none of them set, nothing is initialised: one process, its local devices.

Once initialised, every process runs the same program: sweeps split their vmapped
seeds over a mesh of every process's devices (`_sharding.sharded_map` with
`across_hosts=True`), and work done seed by seed is divided between the processes
(`split_over_processes`), its results shared with all of them."""

from __future__ import annotations

import json
import os
from typing import Callable, Sequence

ENV = {"coordinator_address": "ODEFLOW_COORDINATOR_ADDRESS",
       "num_processes": "ODEFLOW_NUM_PROCESSES", "process_id": "ODEFLOW_PROCESS_ID"}


def distributed_settings(coordinator_address=None, num_processes=None, process_id=None) -> dict | None:
    """The three settings from the arguments, else the environment; `None` when
    none is set (single process). A partial set is an error naming what is missing."""
    given = {"coordinator_address": coordinator_address, "num_processes": num_processes,
             "process_id": process_id}
    settings = {k: v if v is not None else os.environ.get(ENV[k]) for k, v in given.items()}
    if all(v is None for v in settings.values()):
        return None
    missing = [k for k, v in settings.items() if v is None]
    if missing:
        names = ", ".join(f"--{k.replace('_', '-')} (or {ENV[k]})" for k in missing)
        raise ValueError(f"a multi-host run needs all three settings; missing {names}")
    try:
        num, pid = int(settings["num_processes"]), int(settings["process_id"])
    except ValueError:
        raise ValueError(f"num_processes and process_id must be integers, got "
                         f"{settings['num_processes']!r} and {settings['process_id']!r}") from None
    if num < 1 or not 0 <= pid < num:
        raise ValueError(f"need num_processes >= 1 and 0 <= process_id < num_processes, got {num} and {pid}")
    return {"coordinator_address": str(settings["coordinator_address"]), "num_processes": num,
            "process_id": pid}


def initialize(coordinator_address=None, num_processes=None, process_id=None) -> bool:
    """Call `jax.distributed.initialize` when settings are given (before any JAX
    computation); returns whether it did."""
    settings = distributed_settings(coordinator_address, num_processes, process_id)
    if settings is None:
        return False
    import jax

    jax.distributed.initialize(**settings)
    return True


# --- sharing Python values between the processes of a run -----------------------
# Small JSON values (records, journal units) travel as byte arrays through JAX's own
# collectives (`multihost_utils.process_allgather`); with one process nothing moves.


def allgather_json(value) -> list:
    """`value` (JSON-serialisable) from every process, in process order."""
    import jax

    if jax.process_count() == 1:
        return [value]
    import numpy as np
    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(value).encode(), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([data.size], np.int32)))[:, 0]
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:data.size] = data
    rows = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(bytes(row[:n]).decode()) for row, n in zip(rows, sizes)]


def broadcast_json(value):
    """Process 0's `value` on every process."""
    return allgather_json(value)[0]


def split_over_processes(items: Sequence, fn: Callable) -> list:
    """`[fn(x) for x in items]` with item k computed by process k mod the process
    count and the results (JSON-serialisable) shared with every process. An item
    that raises makes every process raise a `RuntimeError` naming it, so that no
    process waits on a collective the others have left."""
    import jax

    count, me = jax.process_count(), jax.process_index()
    if count == 1:
        return [fn(x) for x in items]
    mine = {}
    for k in range(me, len(items), count):
        try:
            mine[k] = {"value": fn(items[k])}
        except Exception as err:  # noqa: BLE001 - re-raised on every process below
            mine[k] = {"error": f"{type(err).__name__}: {err}"}
    results = {int(k): v for part in allgather_json(mine) for k, v in part.items()}
    for k in sorted(results):
        if "error" in results[k]:
            raise RuntimeError(f"{results[k]['error']} (item {k}, process {k % count})")
    return [results[k]["value"] for k in range(len(items))]
