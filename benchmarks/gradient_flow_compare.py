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


def headline(tasks: list[str], command: str) -> tuple[dict, str]:
    """Headline ratios from the per-task JSON results (so the tables can be remade
    without rerunning)."""
    out = RESULTS / "compare"
    data = {t: json.loads((out / f"{t}.json").read_text()) for t in tasks}
    first = next(iter(data.values()))
    machine, cfg = first["machine"], first["config"]
    head = {"machine": machine, "measured_by": first["command"], "report_command": command,
            "tasks": {}}
    lines = [f"Target loss {cfg['target']:g}, {len(cfg['seeds'])} seeds, {cfg['dtype']}, "
             f"{machine['cpu']} ({machine['cores']} cores), jax {machine['jax']}.", "",
             "| task | params | best ODE method | best optax | ODE vs scipy-vode-bdf | "
             "ODE vs scipy-lsoda | ODE vs tuned Adam |", "|---|---|---|---|---|---|---|"]
    fmt = lambda r: "–" if not r or r["median"] is None else (
        f"{r['median']:.3g}x [{r['min']:.3g}, {r['max']:.3g}] ({r['seeds']} seeds)")
    for task, d in data.items():
        methods, records = d["config"]["methods"], d["records"]
        ode, opt = best(d["summary"], ODE), best(d["summary"], OPTAX)
        entry = {"best_ode": ode, "best_optax": opt}
        for peer in ("scipy-vode-bdf", "scipy-lsoda", "adam"):
            if ode and peer in methods:
                entry[f"vs_{peer}"] = paired_ratio(records, peer, ode)
        head["tasks"][task] = entry
        lines.append(f"| {task} | {d['config']['num_params']} | {ode} | {opt} | "
                     f"{fmt(entry.get('vs_scipy-vode-bdf'))} | {fmt(entry.get('vs_scipy-lsoda'))} | "
                     f"{fmt(entry.get('vs_adam'))} |")
    lines += ["", "Ratios are time(peer) / time(best ODE method) per seed, over the seeds "
              "where both reached the target (median [min, max]); above 1 means the ODE "
              "method is faster. Best = most seeds reaching the target, then lowest median time."]
    return head, "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="xor,encoder,parity4")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--target", type=float, default=1e-3)
    parser.add_argument("--scipy-time-cap", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, adam/kvaerno3/scipy only")
    parser.add_argument("--report-only", action="store_true",
                        help="remake the headline tables from existing JSON results")
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    methods = OPTAX + ODE + SCIPY
    if args.quick:
        args.seeds, args.repeats, methods = 2, 1, ["adam", "kvaerno3", "scipy-vode-bdf"]
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    for task in [] if args.report_only else tasks:
        result = compare(task, methods, seeds=args.seeds, target=args.target,
                         repeats=args.repeats, scipy_time_cap=args.scipy_time_cap,
                         progress=lambda line: print(f"[{task}] {line}", flush=True))
        print_table(result)
        write_report(result, RESULTS / "compare", command=command)
    head, text = headline(tasks, command)
    (RESULTS / "gradient_flow_compare.json").write_text(json.dumps(head, indent=1))
    (RESULTS / "gradient_flow_compare.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
