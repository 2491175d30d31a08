"""Tables, JSON and plots of a `CompareResult`."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

from .. import _io
from .._io import atomic_write, atomic_write_text
from .._progress import plural
from ._runner import CompareResult

COLUMNS = ("method", "setting", "reached", "time median [min, max] s", "compile s",
           "tuning s", "presentations", "HVPs", "GN products", "Jacobians", "linear solves", "steps (rej.)",
           "final loss")
"""Work columns are medians over the seeds that reached the target; for an even
number of seeds the lower of the two middle runs, so counts stay whole."""


def summarize(result: CompareResult) -> list[dict]:
    """One row per method: seeds reaching the target and, over those seeds, the
    median, min and max of time and work; the tuning cost (`tuning_s`, the grid's wall
    time, compile included; None where nothing was chosen: untuned, or a grid of one
    value) and the median time to target with it."""
    rows = []
    tuned = result.config.get("tuning", "grid") == "grid"
    for method in result.config["methods"]:
        recs = [r for r in result.records if r["method"] == method]
        hit = [r for r in recs if r["reached"]]
        med = lambda key: float(np.median([r[key] for r in hit])) if hit else None
        count = lambda key: _lower_median([r.get(key, 0) for r in hit])
        table = result.tuning.get(method, {})
        tuning_s = table.get("wall_s") if tuned and len(table.get("grid", [])) > 1 else None
        with_tuning = None if not hit else (tuning_s or 0.0) + med("time_s")
        rows.append({
            "method": method,
            "setting_name": result.tuning.get(method, {}).get("setting", _setting_name(method)),
            "setting": result.tuning.get(method, {}).get("chosen", recs[0]["setting"]),
            "seeds_reached": len(hit), "seeds": len(recs),
            "time_median_s": med("time_s"),
            "time_min_s": min((r["time_s"] for r in hit), default=None),
            "time_max_s": max((r["time_s"] for r in hit), default=None),
            "compile_s": recs[0]["compile_s"],
            "tuning_s": tuning_s, "time_with_tuning_s": with_tuning,
            "presentations_median": count("presentations"), "hvps_median": count("hvps"),
            "gn_products_median": count("gn_products"),
            "jacobians_median": count("jacobians"), "linear_solves_median": count("linear_solves"),
            "steps_median": count("steps"), "rejected_median": count("rejected"),
            "final_loss_median": float(np.median([r["loss"] for r in recs])),
        })
    return rows


def _lower_median(values) -> int | None:
    """The lower middle value: a count some run really took (20, not 20.5)."""
    return int(sorted(values)[(len(values) - 1) // 2]) if values else None


def _setting_name(method: str) -> str:
    from ._methods import get_method

    try:
        return get_method(method).setting
    except ValueError:
        return "setting"


def _fmt_setting(name: str, value) -> str:
    """`lr=0.01`, `rtol=0.0001`, `rtol,atol=0.001,1e-06`; `–` where nothing was tuned."""
    if value is None or (isinstance(value, (list, tuple)) and all(v is None for v in value)):
        return "–"
    return f"{name}={_fmt(value)}"


def _fmt(x, spec=".3g"):
    if x is None:
        return "–"
    if isinstance(x, (list, tuple)):
        return ",".join(_fmt(v) for v in x)
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)  # counts in full: 1540, not 1.54e+03
    return format(x, spec) if isinstance(x, float) else str(x)


def table_rows(result: CompareResult) -> list[list[str]]:
    rows = []
    for s in summarize(result):
        timing = "–" if s["time_median_s"] is None else (
            f"{s['time_median_s']:.3g} [{s['time_min_s']:.3g}, {s['time_max_s']:.3g}]")
        rows.append([
            s["method"], _fmt_setting(s["setting_name"], s["setting"]),
            f"{s['seeds_reached']}/{s['seeds']}", timing,
            _fmt(s["compile_s"], ".2f"), _fmt(s["tuning_s"], ".3g"), _fmt(s["presentations_median"]), _fmt(s["hvps_median"]),
            _fmt(s["gn_products_median"]), _fmt(s["jacobians_median"]), _fmt(s["linear_solves_median"]),
            f"{_fmt(s['steps_median'])} ({_fmt(s['rejected_median'])})",
            _fmt(s["final_loss_median"]),
        ])
    return rows


def markdown(result: CompareResult) -> str:
    c = result.config
    if c.get("tuning", "grid") == "grid":
        setting = ("`setting` is the grid value each method was timed with (learning rate `lr`, "
                   "tolerance `rtol`, first pseudo-time step `dt0`, damping); `tuning s` is the "
                   "grid's wall time on all seeds, compile included, which a user pays before the "
                   "timed run.")
    else:
        setting = ("Untuned: every method at its defaults (`setting` names a learning rate where "
                   "the optimizer needs one; `–`: the function's own defaults).")
    lines = [
        f"Task `{c['task']}` ({c['task_description']}, {c['num_params']} parameters), "
        f"target loss {c['target']:g}, {len(c['seeds'])} seeds, {c['dtype']}. Times and "
        f"work are medians over the seeds that reached the target (min and max in brackets). {setting}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(result)]
    if c.get("tuning", "grid") != "grid":
        return "\n".join(lines) + "\n"
    lines += ["", "Tuning grids (value: seeds reached, median gradient-equivalent work):", ""]
    for method, tune in result.tuning.items():
        grid = "; ".join(f"{_fmt(g['value'])}: {g['seeds_reached']}, {_fmt(g['median_work'])}"
                         for g in tune["grid"])
        lines.append(f"- {method} ({tune['setting']}): {grid} → chosen {_fmt(tune['chosen'])}")
    return "\n".join(lines) + "\n"


def print_table(result: CompareResult) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{result.config['task']}: time to loss {result.config['target']:g}")
    for col in COLUMNS:
        table.add_column(escape(col))
    for row in table_rows(result):
        table.add_row(*map(escape, row))
    Console(width=170).print(table)


def machine_info() -> dict:
    import diffrax
    import equinox
    import jax
    import optax

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "devices": [str(d) for d in jax.devices()],
        "python": sys.version.split()[0], "jax": jax.__version__, "diffrax": diffrax.__version__,
        "equinox": equinox.__version__, "optax": optax.__version__,
    }


def to_json(result: CompareResult, command: str | None = None) -> dict:
    return {
        "config": result.config, "machine": machine_info(), "command": command,
        "summary": summarize(result), "tuning": result.tuning, "records": result.records,
    }


def _curve(record, key):
    """(x, loss) of one run: x is the cumulative time or gradient evaluations at each
    history point, spread evenly over the run's steps (exact for optax, where the
    history is per iteration; for ODE solvers the work per step varies a little)."""
    loss = np.asarray(record["loss_history"])
    frac = np.linspace(0.0, 1.0, len(loss))
    return frac * record[key], loss


def plot(result: CompareResult, path: Path) -> None:
    """Loss against wall time and against gradient evaluations per method: each seed
    (thin), the median over seeds (thick) and the min-max band. A run that stopped
    holds its final loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    methods = result.config["methods"]
    colors = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20").colors
    for m, method in enumerate(methods):
        recs = [r for r in result.records if r["method"] == method and len(r["loss_history"]) > 1]
        color = colors[m % len(colors)]
        for ax, key, floor in zip(axes, ("time_s", "presentations"), (1e-5, 1.0)):
            if not recs:
                continue
            top = max(max(r[key] for r in recs), floor * 10)
            grid = np.geomspace(floor, top, 200)
            curves = []
            for r in recs:
                x, loss = _curve(r, key)
                ax.plot(np.maximum(x, floor), loss, color=color, alpha=0.2, lw=0.7)
                curves.append(np.interp(grid, x, loss, left=loss[0], right=loss[-1]))
            curves = np.array(curves)
            ax.plot(grid, np.median(curves, axis=0), color=color, lw=2, label=method)
            ax.fill_between(grid, curves.min(0), curves.max(0), color=color, alpha=0.12)
    for ax, label in zip(axes, ("wall time [s]", "gradient evaluations (presentations)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(result.config["target"], color="k", ls=":", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("full-batch loss")
    seeds = plural(len(result.config["seeds"]), "seed")
    fig.suptitle(f"{result.config['task']}: {seeds}, target loss "
                 f"{result.config['target']:g} (dotted)\nthick line: median over seeds; band: min to "
                 "max; thin lines: each seed (a run that stopped holds its final loss)", fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, title="method")
    atomic_write(path, lambda f: fig.savefig(f, dpi=110, format="png"))
    plt.close(fig)


def ensure_writable(out: str | Path) -> Path:
    """Create the folder `out` if needed and check a file can be written there; a
    `ValueError` naming the folder otherwise (checked before a long run starts)."""
    return _io.ensure_writable(out, "choose another with --out")


def write_report(result: CompareResult, out: str | Path, command: str | None = None) -> dict:
    """Write `<task>.json`, `<task>.md` and `<task>.png` to the folder `out` (text
    files written to a temporary file and renamed). Returns the paths."""
    out = ensure_writable(out)
    name = result.config["task"]
    paths = {"json": out / f"{name}.json", "markdown": out / f"{name}.md", "plot": out / f"{name}.png"}
    atomic_write_text(paths["json"], json.dumps(to_json(result, command), indent=1))
    atomic_write_text(paths["markdown"], markdown(result))
    plot(result, paths["plot"])
    return paths
