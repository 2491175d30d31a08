"""Digits MLP (64-32-10, 2,410 parameters) to full-batch loss 1e-4: matrix-free
Rosenbrock-W (`ros2-cg`) against tuned Adam, side by side (issue 3, first step).

    python benchmarks/digits_ros2.py

Per seed, each setting of each method's grid is run once (loop over seeds, no vmap),
the setting with most seeds reaching the target and then the lowest median time is
kept, and the kept settings are timed with interleaved repetitions (median).
Writes benchmarks/results/digits_ros2.json and .md.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import optax  # noqa: E402

import odeflow  # noqa: E402
from odeflow.compare._report import machine_info  # noqa: E402
from odeflow.compare._runner import _timed  # noqa: E402
from odeflow.tasks import get_task  # noqa: E402

SEEDS, TARGET, REPEATS, MAX_STEPS = [0, 1, 2, 3], 1e-4, 3, 20_000
GRIDS = {"adam": [0.003, 0.01, 0.03, 0.1, 0.3, 1.0], "ros2-cg": [1e-1, 1e-2, 1e-3]}
OUT = Path(__file__).parent / "results"


def runner(task, method, setting):
    if method == "adam":
        opt = optax.adam(setting)
        return lambda p: odeflow.optimize(task.loss, p, opt, target_loss=TARGET, max_iters=MAX_STEPS)
    return lambda p: odeflow.gradient_flow(task.loss, p, solver=method, rtol=setting, atol=setting,
                                           t1=1e8, target_loss=TARGET, max_steps=MAX_STEPS, throw=False)


def timed(fn, p):
    return _timed(lambda: fn(p))


def main():
    task = get_task("digits")
    params = [task.init(jax.random.key(s)) for s in SEEDS]
    chosen, grids = {}, {}
    for method, grid in GRIDS.items():
        rows = []
        for setting in grid:
            fn = runner(task, method, setting)
            timed(fn, params[0])  # compile
            runs = [timed(fn, p) for p in params]
            hit = [t for r, t in runs if bool(r.reached_target)]
            rows.append({"value": setting, "seeds_reached": len(hit),
                         "median_time_s": float(np.median(hit)) if hit else None})
        best = max(rows, key=lambda r: (r["seeds_reached"], -(r["median_time_s"] or np.inf)))
        chosen[method], grids[method] = best["value"], rows
        print(method, rows, flush=True)
    fns = {m: runner(task, m, chosen[m]) for m in GRIDS}
    times = {(m, i): [] for m in GRIDS for i in range(len(SEEDS))}
    results = {}
    for _ in range(REPEATS):
        for i, p in enumerate(params):
            for m, fn in fns.items():
                res, t = timed(fn, p)
                times[(m, i)].append(t)
                results[(m, i)] = res
    records = []
    for (m, i), res in results.items():
        s = res.stats.as_dict()
        records.append({"method": m, "seed": SEEDS[i], "setting": chosen[m],
                        "reached": bool(res.reached_target), "loss": float(res.loss),
                        "time_s": float(np.median(times[(m, i)])), "time_repeats_s": times[(m, i)],
                        "presentations": s["nfe"], "hvps": s["num_jvps"], "steps": s["num_steps"],
                        "rejected": s["num_rejected"]})
    ratio = [np.median(times[("ros2-cg", i)]) / np.median(times[("adam", i)])
             for i in range(len(SEEDS))]
    lines = [f"Digits MLP 64-32-10 (2,410 parameters) to loss {TARGET:g}, seeds {SEEDS}, float64, "
             f"{machine_info()['cpu']} ({machine_info()['cores']} cores).", "",
             "| method | setting | reached | time median [min, max] s | presentations | HVPs | steps (rej.) |",
             "|---|---|---|---|---|---|---|"]
    for m in GRIDS:
        rs = [r for r in records if r["method"] == m]
        t = [r["time_s"] for r in rs if r["reached"]]
        med = lambda k: float(np.median([r[k] for r in rs]))
        timing = f"{np.median(t):.3g} [{min(t):.3g}, {max(t):.3g}]" if t else "–"
        lines.append(f"| {m} | {chosen[m]:g} | {len(t)}/{len(rs)} | {timing} | {med('presentations'):.0f} | "
                     f"{med('hvps'):.0f} | {med('steps'):.0f} ({med('rejected'):.0f}) |")
    lines += ["", f"time(ros2-cg) / time(Adam) per seed: median {np.median(ratio):.2f} "
              f"[{min(ratio):.2f}, {max(ratio):.2f}]", "",
              "Grids (value: seeds reached, median time s): " + "; ".join(
                  f"{m}: " + ", ".join(f"{r['value']:g}: {r['seeds_reached']}, "
                                       f"{'–' if r['median_time_s'] is None else format(r['median_time_s'], '.3g')}"
                                       for r in rows) for m, rows in grids.items())]
    OUT.mkdir(parents=True, exist_ok=True)
    payload = {"machine": machine_info(), "command": "python " + " ".join(map(shlex.quote, sys.argv)),
               "grids": grids, "chosen": chosen, "records": records,
               "ratio_ros2cg_over_adam": [float(r) for r in ratio]}
    (OUT / "digits_ros2.json").write_text(json.dumps(payload, indent=1))
    (OUT / "digits_ros2.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
