"""Gradient-flow training against tuned optax optimizers and scipy's stiff
integrators, on Owens & Filkin's problems, to full-batch losses 1e-2, 1e-4
and 1e-6.

    python benchmarks/gradient_flow_compare.py            # full run (about an hour)
    python benchmarks/gradient_flow_compare.py --quick    # 2 seeds, fewer methods
    python benchmarks/gradient_flow_compare.py --report-only   # tables from the JSON

Writes benchmarks/results/compare/<target>/<task>.{json,md,png} and
benchmarks/results/gradient_flow_compare.{json,md} with the headline ratios.
Follows ../shared/BENCHMARKS.md: identical initial parameters per seed for every
method, tuned grids (reported), interleaved repetitions with medians, compile time
apart, work counts, per-seed results.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from odeflow.comparison import compare, print_table, write_report  # noqa: E402

ODE = ["tsit5", "implicit-euler", "kvaerno3", "kvaerno5", "auto", "auto-flow", "ros2", "ros2-cg",
       "ros2-gn", "ptc", "ptc-gn"]
OPTAX = ["gd", "momentum", "adam", "lbfgs"]
LM = ["lm"]  # the Levenberg-Marquardt baseline: a least-squares method, not an ODE one
TARGETS = (1e-2, 1e-4, 1e-6)
SCIPY = ["scipy-vode-bdf", "scipy-lsoda"]
RESULTS = Path(__file__).parent / "results"


def paired_ratio(records, slow: str, fast: str) -> dict:
    """Median over seeds (both methods reaching the target) of time(slow)/time(fast)."""
    by = {(r["method"], r["seed"]): r for r in records}
    seeds = sorted({r["seed"] for r in records})
    ratios = [by[(slow, s)]["time_s"] / by[(fast, s)]["time_s"] for s in seeds
              if by[(slow, s)]["reached"] and by[(fast, s)]["reached"]]
    if not ratios:
        return {"median": None, "min": None, "max": None, "seeds": 0}
    return {"median": float(np.median(ratios)), "min": float(np.min(ratios)),
            "max": float(np.max(ratios)), "seeds": len(ratios)}


def best(summary, names):
    """Method among `names` with the most seeds reaching the target, then the lowest
    median time."""
    rows = [r for r in summary if r["method"] in names and r["seeds_reached"] > 0]
    if not rows:
        return None
    return min(rows, key=lambda r: (-r["seeds_reached"], r["time_median_s"]))["method"]


def _folder(target: float) -> Path:
    return RESULTS / "compare" / f"{target:.0e}"


def headline(tasks: list[str], targets, command: str) -> tuple[dict, str]:
    """Headline ratios from the per-task JSON results (so the tables can be remade
    without rerunning)."""
    head, lines, first = {"report_command": command, "cells": []}, [], None
    fmt = lambda r: "–" if not r or r["median"] is None else (
        f"{r['median']:.3g}x [{r['min']:.3g}, {r['max']:.3g}] ({r['seeds']})")
    for task in tasks:
        for target in targets:
            d = json.loads((_folder(target) / f"{task}.json").read_text())
            first = first or d
            methods, records, summary = d["config"]["methods"], d["records"], d["summary"]
            ode, opt = best(summary, ODE), best(summary, OPTAX)
            row = {r["method"]: r for r in summary}
            cell = {"task": task, "num_params": d["config"]["num_params"], "target": target,
                    "best_ode": ode, "best_optax": opt,
                    "reached": {m: f"{row[m]['seeds_reached']}/{row[m]['seeds']}"
                                for m in (ode, opt, "gd") if m in row}}
            for peer in ("scipy-vode-bdf", "scipy-lsoda", opt, "lm"):
                if ode and peer and peer in methods:
                    cell[f"vs_{peer}"] = paired_ratio(records, peer, ode)
            if ode and "gd" in row and row["gd"]["seeds_reached"] and row[ode]["seeds_reached"]:
                cell["presentations_gd_over_ode"] = (row["gd"]["presentations_median"]
                                                     / row[ode]["presentations_median"])
            cell["gd_reached"] = row["gd"]["seeds_reached"] if "gd" in row else 0
            cell["seeds"] = len(d["config"]["seeds"])
            head["cells"].append(cell)
    machine, cfg = first["machine"], first["config"]
    head |= {"machine": machine, "measured_by": first["command"]}
    lines = [f"{len(cfg['seeds'])} seeds, {cfg['dtype']}, {machine['cpu']} "
             f"({machine['cores']} cores), jax {machine['jax']}.", "",
             "| task | params | target | best ODE method (seeds) | best optax (seeds) | "
             "ODE vs scipy-vode-bdf | ODE vs scipy-lsoda | ODE vs best optax | ODE vs lm | "
             "presentations: tuned gd / ODE |", "|---|---|---|---|---|---|---|---|---|---|"]
    for c in head["cells"]:
        ode, opt = c["best_ode"], c["best_optax"]
        reach = lambda m: f"{m} ({c['reached'].get(m, '0')})" if m else "none"
        pres = c.get("presentations_gd_over_ode")
        pres = f"{pres:.3g}x" if pres is not None else f"gd reached {c['gd_reached']}/{c['seeds']}"
        lines.append(
            f"| {c['task']} | {c['num_params']} | {c['target']:g} | {reach(ode)} | "
            f"{reach(opt)} | {fmt(c.get('vs_scipy-vode-bdf'))} | "
            f"{fmt(c.get('vs_scipy-lsoda'))} | {fmt(c.get(f'vs_{opt}'))} | "
            f"{fmt(c.get('vs_lm'))} | {pres} |")
    lines += ["", "Ratios are time(peer) / time(best ODE method) per seed, over the seeds "
              "where both reached the target (median [min, max] (seeds)); above 1 means "
              "the ODE method is faster. Best = most seeds reaching the target, then lowest "
              "median time. Presentations = full-batch gradient evaluations (medians over "
              "the seeds that reached the target; Hessian-vector products not included, "
              "see the per-task tables). scipy runs untuned at rtol 1e-6, atol 1e-8, "
              "capped in time: a cap reached counts as not reaching the target."]
    return head, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="xor,encoder,parity4")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--targets", default=",".join(f"{t:g}" for t in TARGETS))
    parser.add_argument("--scipy-time-cap", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, adam/kvaerno3/scipy only")
    parser.add_argument("--report-only", action="store_true",
                        help="remake the headline tables from existing JSON results")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    targets = [float(t) for t in args.targets.split(",")]
    methods = OPTAX + ODE + LM + SCIPY
    if args.quick:
        args.seeds, args.repeats, methods = 2, 1, ["adam", "kvaerno3", "scipy-vode-bdf"]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for target in [] if args.report_only else targets:
        for task in tasks:
            result = compare(task, methods, seeds=args.seeds, target=target,
                             repeats=args.repeats, scipy_time_cap=args.scipy_time_cap,
                             progress=lambda line: print(f"[{task} {target:g}] {line}",
                                                         flush=True))
            print_table(result)
            write_report(result, _folder(target), command=command)
    head, text = headline(tasks, targets, command)
    (RESULTS / "gradient_flow_compare.json").write_text(json.dumps(head, indent=1))
    (RESULTS / "gradient_flow_compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
