"""Several hosts through JAX's own machinery: `jax.distributed.initialize`, with the
coordinator address, process count and process id from arguments (the CLI's
`--coordinator-address`, `--num-processes`, `--process-id`) or the environment
(`ODEFLOW_COORDINATOR_ADDRESS`, `ODEFLOW_NUM_PROCESSES`, `ODEFLOW_PROCESS_ID`).
With none of them set, nothing is initialised: one process, its local devices."""

from __future__ import annotations

import os

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
