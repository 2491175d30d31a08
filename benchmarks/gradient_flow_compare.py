"""Gradient-flow training against tuned optax optimizers and the scipy approach of
the original article, on Owens & Filkin's problems (issue: foundation).

    python benchmarks/gradient_flow_compare.py            # full run (tens of minutes)
    python benchmarks/gradient_flow_compare.py --quick    # 2 seeds, fewer methods

Writes benchmarks/results/compare/<task>.{json,md,png} and
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

from odeflow.compare import compare, print_table, write_report  # noqa: E402
from odeflow.compare._report import machine_info  # noqa: E402

ODE = ["euler", "tsit5", "dopri5", "implicit-euler", "kvaerno3", "kvaerno5"]
OPTAX = ["gd", "momentum", "adam", "lbfgs"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="xor,encoder,parity4")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--target", type=float, default=1e-3)
    parser.add_argument("--scipy-time-cap", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, adam/kvaerno3/scipy only")
    args = parser.parse_args()
    methods = OPTAX + ODE + SCIPY
    if args.quick:
        args.seeds, args.repeats, methods = 2, 1, ["adam", "kvaerno3", "scipy-vode-bdf"]
    out = RESULTS / "compare"
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    headline = {"machine": machine_info(), "command": command, "tasks": {}}
    lines = [f"Target loss {args.target:g}, {args.seeds} seeds, float64, "
             f"{headline['machine']['cpu']} ({headline['machine']['cores']} cores).", "",
             "| task | best ODE method | best optax | scipy | best ODE vs scipy-vode-bdf | "
             "best ODE vs Adam |", "|---|---|---|---|---|---|"]
    for task in args.tasks.split(","):
        result = compare(task, methods, seeds=args.seeds, target=args.target,
                         repeats=args.repeats, scipy_time_cap=args.scipy_time_cap,
                         progress=lambda line: print(f"[{task}] {line}", flush=True))
        print_table(result)
        paths = write_report(result, out, command=command)
        summary = json.loads(paths["json"].read_text())["summary"]
        ode = best(summary, ODE)
        opt = best(summary, OPTAX)
        sci = best(summary, SCIPY)
        entry = {"best_ode": ode, "best_optax": opt, "best_scipy": sci,
                 "summary": summary}
        if ode and "scipy-vode-bdf" in methods:
            entry["ode_vs_vode"] = paired_ratio(result.records, "scipy-vode-bdf", ode)
        if ode and "adam" in methods:
            entry["ode_vs_adam"] = paired_ratio(result.records, "adam", ode)
        headline["tasks"][task] = entry
        fmt = lambda r: "–" if not r or r["median"] is None else (
            f"{r['median']:.3g}x [{r['min']:.3g}, {r['max']:.3g}] ({r['seeds']} seeds)")
        lines.append(f"| {task} | {ode} | {opt} | {sci} | {fmt(entry.get('ode_vs_vode'))} | "
                     f"{fmt(entry.get('ode_vs_adam'))} |")
    lines += ["", "Ratios are time(peer) / time(best ODE method), per seed where both "
              "reached the target; above 1 means the ODE method is faster."]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gradient_flow_compare.json").write_text(json.dumps(headline, indent=1))
    (RESULTS / "gradient_flow_compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
