"""Seeds per second and data-parallel training throughput against the device count.

Each device count runs in a fresh process (the count is fixed when JAX starts; on
CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N splits the host into N
devices). Measured there:

- seed sweep: gradient flow (Tsit5, rtol 1e-3) of parity4 to loss 1e-3 from 16
  seeds, vmapped and split over the devices (`odeflow._sharding.sharded_map`,
  what `odeflow.compare` does while tuning): seeds per second, median of 5 after a
  warm-up;
- training: the digits ODE-Net (MLP) by `odeflow.fitting(..., devices=k)`, batch 256,
  images per second over 20 steps after 2 warm-up steps, median of 3.

The seed sweep also runs split over several processes on this machine (one
device each; `jax.distributed` over localhost, as on a cluster of hosts):
`sharded_map(..., across_hosts=True)`, every process holding the whole batch and
receiving the whole result. Each process is pinned to a core of its own, as a
host would have its own: unpinned, two processes' XLA thread pools on 2 cores
slowed each other to half speed even when they did not communicate at all.
Data-parallel training stays within a process, so those rows have no training
figure.

On a GPU machine (when one is lent) the same script runs with the real device.

    python benchmarks/scaling/devices.py [--quick]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _shared import RESULTS, settings, table, write  # noqa: E402

FULL = dict(devices=[1, 2, 4], hosts=[2], seeds=16, repeats=5, train_steps=20, batch=256)
QUICK = dict(devices=[2], hosts=[], seeds=4, repeats=1, train_steps=2, batch=32)


def measure(cfg: dict) -> dict:
    """In this process: seeds/s and images/s on all of its devices."""
    import time

    if "ODEFLOW_SCALING_CPU" in os.environ and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(os.environ["ODEFLOW_SCALING_CPU"])})
    from odeflow._distributed import initialize

    initialize()  # several processes: from the ODEFLOW_* environment variables
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import optax

    import odeflow
    from odeflow import data, nn
    from odeflow import fitting as T
    from odeflow._sharding import sharded_map
    from odeflow.problems import get_task

    n = len(jax.local_devices())
    task = get_task("parity4")
    batch = task.init_batch(range(cfg["seeds"]))
    run = lambda p: odeflow.gradient_flow(task.loss, p, solver="tsit5", rtol=1e-3, atol=1e-3, t1=1e8,
                                          target_loss=1e-3, max_steps=20_000, throw=False)
    sharded = sharded_map(run, n, across_hosts=True)  # compiled once
    sweep = lambda: jax.block_until_ready(sharded(batch))
    res = sweep()
    times = []
    for _ in range(cfg["repeats"]):
        start = time.perf_counter()
        sweep()
        times.append(time.perf_counter() - start)
    processes = jax.process_count()
    common = dict(devices=n * processes, processes=processes, platform=jax.default_backend(),
                  device_kind=str(jax.devices()[0].device_kind), seeds=cfg["seeds"],
                  reached=int(np.sum(np.asarray(res.reached_target))), sweep_s=float(np.median(times)),
                  seeds_per_s=cfg["seeds"] / float(np.median(times)))
    if processes > 1:
        return dict(common, train_s=None, images_per_s=None)
    d = data.digits()
    d = {"x": np.asarray(d["x"], np.float32), "y": d["y"]}
    model = nn.ODENet((1, 8, 8), 10, key=jax.random.key(0), width=32, hidden=64, rtol=1e-3, atol=1e-5)
    model = jax.tree.map(lambda x: x.astype(np.float32) if hasattr(x, "dtype") and x.dtype == np.float64 else x, model)
    train_times = []
    for _ in range(max(1, cfg["repeats"] // 2)):
        options = dict(optimizer=optax.adam(1e-3), batch_size=cfg["batch"], key=jax.random.key(1),
                      progress=False, count_nfe=False, devices=n)
        T.fit(model, T.classification_loss(), d, steps=2, **options)  # compile
        start = time.perf_counter()
        T.fit(model, T.classification_loss(), d, steps=cfg["train_steps"], **options)
        train_times.append(time.perf_counter() - start)
    return dict(common, train_s=float(np.median(train_times)),
                images_per_s=cfg["train_steps"] * cfg["batch"] / float(np.median(train_times)))


def _device_flags(n: int) -> str:
    """XLA_FLAGS for a child process with `n` CPU devices, keeping the caller's other
    flags."""
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split()
            if not f.startswith("--xla_force_host_platform_device_count")]
    return " ".join(kept + [f"--xla_force_host_platform_device_count={n}"])


def _several_processes(cfg: dict, hosts: int) -> dict:
    """The measurement in `hosts` processes of one device and one core each, joined
    by `jax.distributed` over localhost; process 0's row."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ, ODEFLOW_SCALING_CHILD=json.dumps(cfg),
                                                  XLA_FLAGS=_device_flags(1),
                                                  ODEFLOW_COORDINATOR_ADDRESS=f"localhost:{port}",
                                                  ODEFLOW_NUM_PROCESSES=str(hosts),
                                                  ODEFLOW_PROCESS_ID=str(i),
                                                  ODEFLOW_SCALING_CPU=str(i % os.cpu_count())))
             for i in range(hosts)]
    outputs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outputs):
        if p.returncode != 0:
            raise RuntimeError(f"a process of the {hosts}-process run failed:\n{err[-3000:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def main(argv=None):
    if os.environ.get("ODEFLOW_SCALING_CHILD"):
        print(json.dumps(measure(json.loads(os.environ["ODEFLOW_SCALING_CHILD"]))))
        return
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv, RESULTS / "scaling")
    rows = []
    for n in cfg["devices"]:
        env = dict(os.environ, ODEFLOW_SCALING_CHILD=json.dumps(cfg),
                   XLA_FLAGS=_device_flags(n))
        proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    for hosts in cfg.get("hosts", []):
        rows.append(_several_processes(cfg, hosts))
        print(rows[-1], flush=True)
    base = rows[0]
    speed = lambda r, k: "-" if r[k] is None else f"{r[k] / base[k]:.2f}x"
    md = table(["processes", "devices", "seed sweep s", "seeds/s", "speed-up", "train images/s", "speed-up"],
               [[r["processes"], r["devices"], f"{r['sweep_s']:.2f}", f"{r['seeds_per_s']:.1f}",
                 speed(r, "seeds_per_s"), "-" if r["images_per_s"] is None else f"{r['images_per_s']:.0f}",
                 speed(r, "images_per_s")] for r in rows])
    write(out, "devices", quick, cfg, rows,
          f"Seed sweep (parity4, Tsit5, {cfg['seeds']} seeds) and data-parallel ODE-Net training "
          f"(digits, batch {cfg['batch']}) against simulated CPU devices, in one process or "
          "several (jax.distributed over localhost)\n\n" + md)


if __name__ == "__main__":
    main()
