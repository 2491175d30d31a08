"""Seeds per second and data-parallel training throughput against the device count.

Each device count runs in a fresh process (the count is fixed when JAX starts; on
CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N splits the host into N
devices). Measured there:

- seed sweep: gradient flow (Tsit5, rtol 1e-3) of parity4 to loss 1e-3 from 16
  seeds, vmapped and split over the devices (`odeflow._sharding.sharded_map`,
  what `odeflow.compare` does while tuning): seeds per second, median of 5 after a
  warm-up;
- training: the digits ODE-Net (MLP) by `odeflow.train(..., devices=k)`, batch 256,
  images per second over 20 steps after 2 warm-up steps, median of 3.

On a GPU machine (when one is lent) the same script runs with the real device.

    python benchmarks/scaling/devices.py [--quick]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _shared import RESULTS, settings, table, write  # noqa: E402

FULL = dict(devices=[1, 2, 4], seeds=16, repeats=5, train_steps=20, batch=256)
QUICK = dict(devices=[2], seeds=4, repeats=1, train_steps=2, batch=32)


def measure(cfg: dict) -> dict:
    """In this process: seeds/s and images/s on all of its devices."""
    import time

    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import optax

    import odeflow
    from odeflow import data, nn
    from odeflow import train as T
    from odeflow._sharding import sharded_map
    from odeflow.tasks import get_task

    n = len(jax.local_devices())
    task = get_task("parity4")
    batch = task.init_batch(range(cfg["seeds"]))
    run = lambda p: odeflow.gradient_flow(task.loss, p, solver="tsit5", rtol=1e-3, atol=1e-3, t1=1e8,
                                          target_loss=1e-3, max_steps=20_000, throw=False)
    sharded = sharded_map(run, n)  # compiled once
    sweep = lambda: jax.block_until_ready(sharded(batch))
    res = sweep()
    times = []
    for _ in range(cfg["repeats"]):
        start = time.perf_counter()
        sweep()
        times.append(time.perf_counter() - start)
    d = data.digits()
    d = {"x": np.asarray(d["x"], np.float32), "y": d["y"]}
    model = nn.ODENet((1, 8, 8), 10, key=jax.random.key(0), width=32, hidden=64, rtol=1e-3, atol=1e-5)
    model = jax.tree.map(lambda x: x.astype(np.float32) if hasattr(x, "dtype") and x.dtype == np.float64 else x, model)
    train_times = []
    for _ in range(max(1, cfg["repeats"] // 2)):
        common = dict(optimizer=optax.adam(1e-3), batch_size=cfg["batch"], key=jax.random.key(1),
                      progress=False, count_nfe=False, devices=n)
        T.train(model, T.classification_loss(), d, steps=2, **common)  # compile
        start = time.perf_counter()
        T.train(model, T.classification_loss(), d, steps=cfg["train_steps"], **common)
        train_times.append(time.perf_counter() - start)
    return dict(devices=n, device_kind=str(jax.devices()[0].device_kind), platform=jax.default_backend(),
                seeds=cfg["seeds"], reached=int(np.sum(np.asarray(res.reached_target))),
                sweep_s=float(np.median(times)), seeds_per_s=cfg["seeds"] / float(np.median(times)),
                train_s=float(np.median(train_times)),
                images_per_s=cfg["train_steps"] * cfg["batch"] / float(np.median(train_times)))


def main(argv=None):
    if os.environ.get("ODEFLOW_SCALING_CHILD"):
        print(json.dumps(measure(json.loads(os.environ["ODEFLOW_SCALING_CHILD"]))))
        return
    cfg, out, quick = settings(__doc__, FULL, QUICK, argv, RESULTS / "scaling")
    rows = []
    for n in cfg["devices"]:
        env = dict(os.environ, ODEFLOW_SCALING_CHILD=json.dumps(cfg),
                   XLA_FLAGS=f"--xla_force_host_platform_device_count={n}")
        proc = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    base = rows[0]
    md = table(["devices", "seed sweep s", "seeds/s", "speed-up", "train images/s", "speed-up"],
               [[r["devices"], f"{r['sweep_s']:.2f}", f"{r['seeds_per_s']:.1f}",
                 f"{r['seeds_per_s'] / base['seeds_per_s']:.2f}x", f"{r['images_per_s']:.0f}",
                 f"{r['images_per_s'] / base['images_per_s']:.2f}x"] for r in rows])
    write(out, "devices", quick, cfg, rows,
          f"Seed sweep (parity4, Tsit5, {cfg['seeds']} seeds) and data-parallel ODE-Net training "
          f"(digits, batch {cfg['batch']}) against simulated CPU devices\n\n" + md)


if __name__ == "__main__":
    main()
