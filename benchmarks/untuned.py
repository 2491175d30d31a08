"""Every method at the defaults a user gets: `odeflow.gradient_flow(loss, params,
target_loss=T)` against optax's optimizers as a new user writes them, on Owens &
Filkin's problems, the digits MLPs and an MNIST-1D MLP of 102,010 parameters, to
full-batch loss 1e-4.

    python benchmarks/untuned.py            # the full run (about 25 minutes, 2 cores)
    python benchmarks/untuned.py --quick    # a smoke run, tiny settings
    python benchmarks/untuned.py --report-only   # the summary again from the last run's files

Every problem is one `odeflow.compare(..., tuning="none")` run: the same initial
parameters per seed for all methods, no grid, each (method, seed) timed with
repetitions interleaved across methods (medians), compile time apart (the first
call's excess over the second, measured per method: the compile-time table).
`auto` is `gradient_flow`'s default with a target; `auto-flow` the
trajectory-following switcher it uses without one; `ptc`, `ptc-gn` and `lm`
pseudo-transient continuation (Hessian and Gauss-Newton products) and
Levenberg-Marquardt, `ptc-lbfgs` pseudo-transient continuation with L-BFGS
curvature (what `auto` is above 100 parameters), each at its defaults; gd and
momentum at 0.01 (optax.sgd has no default learning rate), Adam at 1e-3, L-BFGS as
`optax.lbfgs()`.

Writes benchmarks/results/untuned/<problem>.{json,md,png} (compare's report),
benchmarks/results/untuned.{json,md} (the summary: seeds reached and median time
per method and problem, time of the default over L-BFGS's and Adam's per seed,
and compile times) and benchmarks/results/untuned_seeds.md (the final loss of
every run).
"""

from __future__ import annotations

import json
import shlex
import sys

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from _shared import settings, write  # noqa: E402
from odeflow.comparison import compare, write_report  # noqa: E402
from odeflow.problems import get_task  # noqa: E402

TARGET = 1e-4
ALL = ["gd", "momentum", "adam", "lbfgs", "auto", "auto-flow", "ptc", "ptc-gn", "ptc-lbfgs", "lm"]
PROBLEMS = {  # name: (task, task options, methods, seeds, repeats)
    "xor": ("xor", {}, ALL, 8, 5),
    "encoder": ("encoder", {}, ALL, 8, 5),
    "parity4": ("parity4", {}, ALL, 8, 5),
    "digits-2410": ("digits", {"hidden": 32}, ALL, 4, 5),
    # plain gradient descent at 0.01 and the flow to 1e-4 take minutes per run here
    "digits-24010": ("digits", {"hidden": 320}, ["adam", "lbfgs", "auto", "ptc-gn", "lm"], 3, 3),
    # a gradient here costs tens of milliseconds: two seeds, one timed run, Adam capped
    "mnist1d-102010": ("mnist1d", {"hidden": 2000}, ["adam", "lbfgs", "auto"], 2, 1),
}
MAX_STEPS = {"mnist1d-102010": 3000}  # else 20,000
QUICK = {"xor": ("xor", {}, ["adam", "lbfgs", "auto", "lm"], 2, 1)}
METHOD_COLUMNS = ["auto", "adam", "lbfgs", "ptc-lbfgs", "lm", "ptc-gn", "auto-flow", "gd"]


def per_seed_ratio(records, slow: str, fast: str) -> list[float]:
    """time(slow) / time(fast) per seed where both reached the target."""
    by = {(r["method"], r["seed"]): r for r in records}
    seeds = sorted({r["seed"] for r in records})
    return [by[(slow, s)]["time_s"] / by[(fast, s)]["time_s"] for s in seeds
            if (slow, s) in by and (fast, s) in by and by[(slow, s)]["reached"] and by[(fast, s)]["reached"]]


def summarize(name: str, data: dict) -> dict:
    rows = {r["method"]: r for r in data["summary"]}
    by_seed = sorted(data["records"], key=lambda r: r["seed"])
    return {
        "problem": name, "num_params": data["config"]["num_params"], "seeds": len(data["config"]["seeds"]),
        "methods": {m: {"reached": r["seeds_reached"], "time_s": r["time_median_s"],
                        "compile_s": r["compile_s"], "steps": r["steps_median"]}
                    for m, r in rows.items()},
        "auto_over_lbfgs": per_seed_ratio(data["records"], "auto", "lbfgs"),
        "auto_over_adam": per_seed_ratio(data["records"], "auto", "adam"),
        "final_loss_by_seed": {m: [r["loss"] for r in by_seed if r["method"] == m] for m in rows},
        "reached_by_seed": {m: [r["reached"] for r in by_seed if r["method"] == m] for m in rows},
    }


def _cell(row: dict | None, seeds: int) -> str:
    if row is None:
        return "–"
    time = "–" if row["time_s"] is None else f"{row['time_s'] * 1e3:.3g} ms"
    return f"{time} ({row['reached']}/{seeds})"


def _ratios(values: list[float]) -> str:
    if not values:
        return "–"
    return f"{np.median(values):.2g}x [{min(values):.2g}, {max(values):.2g}] ({len(values)})"


def markdown(summaries: list[dict]) -> str:
    lines = [
        f"Untuned: every method at its defaults, target loss {TARGET:g}, float64, full batch. "
        "Median time over the seeds that reached the target (seeds reached in brackets); "
        "compile time apart.",
        "",
        "| problem (parameters) | " + " | ".join(f"`{m}`" for m in METHOD_COLUMNS)
        + " | `auto` / L-BFGS per seed | `auto` / Adam per seed |",
        "|---|" + "---|" * (len(METHOD_COLUMNS) + 2),
    ]
    for s in summaries:
        cells = [_cell(s["methods"].get(m), s["seeds"]) for m in METHOD_COLUMNS]
        lines.append(f"| {s['problem']} ({s['num_params']:,}) | " + " | ".join(cells)
                     + f" | {_ratios(s['auto_over_lbfgs'])} | {_ratios(s['auto_over_adam'])} |")
    lines += ["", "Ratios: time(`auto`) / time(peer) per seed where both reached the target, "
              "median [min, max] (seeds); below 1 the default gradient flow is faster.", "",
              "Compile time (first call's excess over the second), seconds:", "",
              "| problem | " + " | ".join(f"`{m}`" for m in METHOD_COLUMNS) + " | `auto` / L-BFGS |",
              "|---|" + "---|" * (len(METHOD_COLUMNS) + 1)]
    for s in summaries:
        compile_s = {m: r["compile_s"] for m, r in s["methods"].items()}
        ratio = (compile_s["auto"] / compile_s["lbfgs"]
                 if compile_s.get("auto") and compile_s.get("lbfgs") else None)
        lines.append(f"| {s['problem']} | " + " | ".join(
            "–" if compile_s.get(m) is None else f"{compile_s[m]:.2f}" for m in METHOD_COLUMNS)
            + f" | {'–' if ratio is None else f'{ratio:.2f}x'} |")
    return "\n".join(lines) + "\n"


def seeds_markdown(summaries: list[dict]) -> str:
    """Where each run ends, per problem, method and seed."""
    lines = ["Where each run ends: the final loss per seed (bold: target reached; a loss far "
             "above the target is a plateau or a local minimum the run settled on, or the step "
             "cap).", ""]
    for s in summaries:
        seeds = s["seeds"]
        lines += [f"{s['problem']}:", "", "| method | " + " | ".join(f"seed {i}" for i in range(seeds)) + " |",
                  "|---|" + "---|" * seeds]
        for m in METHOD_COLUMNS:
            if m not in s["final_loss_by_seed"]:
                continue
            cells = [f"**{loss:.2g}**" if hit else f"{loss:.2g}"
                     for loss, hit in zip(s["final_loss_by_seed"][m], s["reached_by_seed"][m])]
            lines.append(f"| `{m}` | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    report_only = "--report-only" in argv
    if report_only:
        argv.remove("--report-only")
    problems, out, quick = settings(__doc__, PROBLEMS, QUICK, argv)
    suffix = "_quick" if quick else ""
    seeds_path = out / f"untuned_seeds{suffix}.md"
    if report_only:  # the summary again from the per-problem results of the last run
        folder, path = out / f"untuned{suffix}", out / f"untuned{suffix}.json"
        previous = json.loads(path.read_text())
        summaries = [summarize(name, json.loads((folder / f"{name}.json").read_text())) for name in problems]
        write(out, "untuned", quick, previous["config"], summaries, markdown(summaries))
        seeds_path.write_text(seeds_markdown(summaries))
        payload = json.loads(path.read_text())  # as written, with the run's own command and date
        payload.update(command=previous["command"], date=previous["date"])
        path.write_text(json.dumps(payload, indent=1))
        return 0
    summaries = []
    for name, (task_name, options, methods, seeds, repeats) in problems.items():
        task = get_task(task_name, **options)
        result = compare(task, methods, seeds=seeds, target=TARGET, repeats=repeats, tuning="none",
                         max_steps=MAX_STEPS.get(name, 20_000), progress=lambda line: print(f"[{name}] {line}", flush=True))
        command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
        folder = out / ("untuned_quick" if quick else "untuned")
        paths = write_report(_named(result, name), folder, command=command)
        summaries.append(summarize(name, json.loads(paths["json"].read_text())))
    config = {"target": TARGET, "max_steps": MAX_STEPS, "problems": {k: [v[0], v[1], v[2], v[3], v[4]] for k, v in problems.items()}}
    write(out, "untuned", quick, config, summaries, markdown(summaries))
    seeds_path.write_text(seeds_markdown(summaries))
    return 0


def _named(result, name: str):
    """The result with its task named after the problem (two digits sizes share a task)."""
    result.config["task"] = name
    return result


if __name__ == "__main__":
    sys.exit(main())
