"""`compare`: every method from identical initial parameters on every seed."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._distributed import split_over_processes
from .._progress import Progress, plural
from .._sharding import device_count, map_over_devices
from ..problems import Task, get_task
from ..flow import STATUSES, gradient_flow, levenberg_marquardt, optimize
from ._journal import Journal
from ._methods import Method, get_method
from ._scipy import scipy_flow

HORIZON = 1e8  # flow time is not the stopping rule: the target and max_steps are
PTC_HORIZON = 1e30  # pseudo-time steps grow geometrically
PTC_STEADY_TOL = 1e-12
VMAP_PARAM_LIMIT = 1000  # PTC's steady-state test must not stop it before the target
TUNINGS = {"grid": "each method's setting chosen on a grid over the same seeds",
           "none": "every method at its defaults, as a new user calls it"}


@dataclasses.dataclass
class CompareResult:
    """Everything `compare` measured.

    - `records`: one dict per (method, seed) with status, time, work counts, loss,
      accuracy and a thinned loss history.
    - `tuning`: per method, the grid tried, what each value achieved, the value
      chosen and the grid's wall time `wall_s` (compile included; 0 untuned).
    - `config`: the task, target, seeds and limits used.
    """

    records: list[dict]
    tuning: dict[str, dict]
    config: dict


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count, got {seeds}")
        return list(range(seeds))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty; pass a count or a list of integer seeds")
    return seeds


class _Runner:
    """Runs one method at one setting on one seed (or a batch), reusing compiled code."""

    def __init__(self, task: Task, target: float, max_steps: int, max_solver_steps: int,
                 devices: int = 1):
        self.task, self.target, self.max_steps, self.devices = task, target, max_steps, devices
        self.max_solver_steps = max_solver_steps
        self._optimizers = {}

    def optimizer(self, method: Method):
        if method.name not in self._optimizers:
            self._optimizers[method.name] = method.make_optimizer()
        return self._optimizers[method.name]

    def run(self, method: Method, setting, params):
        """One training run; `setting` None (untuned) leaves every option of a flow or
        Levenberg-Marquardt run at the function's default."""
        if method.kind == "optax":
            opt = self.optimizer(method)
            state = opt.init(params)
            if setting is not None:
                dtype = jax.tree.leaves(params)[0].dtype
                hyper = dict(state.hyperparams, learning_rate=jnp.asarray(setting, dtype))
                state = state._replace(hyperparams=hyper)
            return optimize(self.task.loss, params, opt, target_loss=self.target,
                            max_iters=self.max_steps, opt_state=state, throw=False)
        if method.kind == "lm":
            damping = {} if setting is None else {"damping": setting}
            return levenberg_marquardt(self.task.composite_loss, params, **damping,
                                       target_loss=self.target, max_iters=self.max_steps, throw=False)
        solver = method.solver or method.name
        kwargs = dict(target_loss=self.target, max_steps=self.max_solver_steps, throw=False,
                      curvature=method.curvature)
        if setting is None:
            pass
        elif solver == "euler":
            kwargs.update(dt0=setting, t1=setting * self.max_solver_steps)
        elif solver.startswith("ptc"):
            kwargs.update(dt0=setting, t1=PTC_HORIZON, rtol=PTC_STEADY_TOL, atol=PTC_STEADY_TOL)
        else:
            kwargs.update(rtol=setting, atol=setting, t1=HORIZON)
        loss = self.task.composite_loss if method.curvature == "gauss-newton" else self.task.loss
        return gradient_flow(loss, params, solver=solver, **kwargs)

    def work(self, stats) -> np.ndarray:
        """Gradient-equivalent evaluations: gradients, plus one per Hessian-vector
        product and per column of each dense Hessian."""
        n = self.task.num_params
        return (np.asarray(stats.nfe) + np.asarray(stats.num_jvps)
                + n * np.asarray(stats.num_jacobians))

    def run_batch(self, method: Method, setting, batch, vmap_seeds: bool):
        """`(reached, work)` per seed: under `vmap` (one program for all seeds, split
        over `self.devices` of every process), or seed by seed (no seed waits for the
        slowest one's loop iterations; seeds divided between the processes)."""
        if vmap_seeds:
            res = map_over_devices(lambda p: self.run(method, setting, p), batch, self.devices,
                                   across_hosts=True)
            return np.asarray(res.reached_target), self.work(res.stats)

        def one(i):
            res = self.run(method, setting, jax.tree.map(lambda x: x[i], batch))
            return [bool(res.reached_target), self.work(res.stats).item()]

        runs = split_over_processes(range(len(jax.tree.leaves(batch)[0])), one)
        return np.array([r[0] for r in runs]), np.array([r[1] for r in runs])


def _tune(runner: _Runner, method: Method, batch, vmap_seeds: bool) -> tuple[object, dict]:
    """Best grid value: most seeds reaching the target, then the least median work
    (gradient-equivalent evaluations, `_Runner.work`) over those seeds."""
    rows, best, best_key = [], None, None
    for setting in method.grid:
        reached, work = runner.run_batch(method, setting, batch, vmap_seeds)
        median = float(np.median(work[reached])) if reached.any() else None
        rows.append({"value": setting, "seeds_reached": int(reached.sum()), "median_work": median})
        key = (int(reached.sum()), -(median if median is not None else np.inf))
        if best_key is None or key > best_key:
            best, best_key = setting, key
    return best, {"setting": method.setting, "grid": rows, "chosen": best}


def _thin(values, times, n=200):
    keep = np.isfinite(values) & np.isfinite(times)
    values, times = np.asarray(values)[keep], np.asarray(times)[keep]
    idx = np.unique(np.linspace(0, len(values) - 1, min(n, len(values))).astype(int)) if len(values) else []
    return [float(v) for v in values[idx]], [float(t) for t in times[idx]]


def _record(task, method, setting, seed, res) -> dict:
    """A run's outcome; the driver adds its times (`time_s`, `compile_s`)."""
    metrics = {k: float(v) for k, v in task.metrics(res.params).items()}
    stats = res.stats.as_dict()
    hist, hist_t = _thin(np.asarray(res.loss_history), np.asarray(res.history_t))
    return {
        "method": method.name, "seed": seed, "setting": setting,
        "status": STATUSES[int(res.status)], "reason": res.reason,
        "reached": bool(res.reached_target), "loss": float(res.loss),
        "accuracy": metrics["accuracy"], "test_accuracy": metrics.get("test_accuracy"),
        "presentations": stats["nfe"], **_curvature_products(method, stats["num_jvps"]),
        "jacobians": stats["num_jacobians"], "linear_solves": stats["num_linear_solves"],
        "steps": stats["num_steps"], "accepted": stats["num_accepted"],
        "rejected": stats["num_rejected"], "newton_failures": stats["num_newton_failures"],
        "loss_evals": stats["num_loss_evals"], "loss_history": hist, "history_t": hist_t,
    }


def _curvature_products(method, jvps: int) -> dict:
    """Jacobian-vector products of the gradient: Hessian-vector products, or
    Gauss-Newton products for the Gauss-Newton methods (`ptc-gn`, `ros2-gn`, `lm`)."""
    gauss_newton = method.curvature == "gauss-newton" or method.kind == "lm"
    return {"hvps": 0 if gauss_newton else jvps, "gn_products": jvps if gauss_newton else 0}


def _failed_record(method, seed, setting, reason: str) -> dict:
    """A (method, seed) that raised instead of returning: recorded, not fatal."""
    counts = dict.fromkeys(("presentations", "hvps", "gn_products", "jacobians", "linear_solves", "steps",
                            "accepted", "rejected", "newton_failures", "loss_evals"), -1)
    return {
        "method": method.name, "seed": seed, "setting": setting, "status": "failed",
        "reason": reason, "reached": False, "time_s": None, "compile_s": None,
        "loss": float("nan"), "accuracy": None, "test_accuracy": None, **counts,
        "loss_history": [], "history_t": [],
    }


def _describe(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}".rstrip(": ")


def _scipy_record(task, method, seed, params, target, time_cap) -> dict:
    rtol, atol = method.grid[0]
    out = scipy_flow(task.loss, params, integrator=method.name.removeprefix("scipy-"),
                     target=target, rtol=rtol, atol=atol, time_cap=time_cap)
    metrics = {k: float(v) for k, v in task.metrics(out["params"]).items()}
    hist, hist_t = _thin(out["loss_history"], out["history_t"])
    reasons = {"target_reached": "", "time_cap": f"wall-time cap of {time_cap:g} s reached",
               "max_steps_reached": "max_steps reached above the target loss",
               "horizon_reached": "stopped at the horizon above the target loss",
               "failed": "the scipy integrator reported a failure"}
    return {
        "method": method.name, "seed": seed, "setting": [rtol, atol], "status": out["status"],
        "reason": reasons.get(out["status"], out["status"]),
        "reached": out["status"] == "target_reached", "time_s": out["time_s"], "compile_s": 0.0,
        "loss": out["loss"], "accuracy": metrics["accuracy"],
        "test_accuracy": metrics.get("test_accuracy"), "presentations": out["nfe"], "hvps": 0,
        "jacobians": out["num_jacobians"], "linear_solves": -1, "steps": out["num_steps"],
        "accepted": -1, "rejected": -1, "newton_failures": -1, "loss_evals": len(out["loss_history"]),
        "loss_history": hist, "history_t": hist_t,
    }


def _scipy_units(task, method, journal, param, seeds, target, time_cap, say) -> dict:
    """The scipy runs of `method` not yet in `journal`, seeds divided between the
    processes; a run that raises is recorded as failed."""

    def one(i):
        key = f"scipy/{method.name}/{i}"
        if key in journal:
            return {}
        say(f"{method.name}: seed {seeds[i]} ({i + 1} of {len(seeds)}, cap {time_cap:g} s)")
        try:
            journal[key] = _scipy_record(task, method, seeds[i], param(i), target, time_cap)
        except Exception as err:  # noqa: BLE001
            journal[key] = _failed_record(method, seeds[i], list(method.grid[0]), _describe(err))
        say.advance()
        return {key: journal[key]}

    return {k: v for units in split_over_processes(range(len(seeds)), one) for k, v in units.items()}


def _tune_unit(runner, method, batch, param, say, vmap_seeds, position, tuning: str) -> dict:
    """Grid choice of one method (its `default` untuned), then a warm-up call whose
    excess over a second call is the compile time; a method that raises is recorded
    with the error instead."""
    if tuning == "grid":
        say(f"tuning {method.name} ({position}) over {method.setting} in {list(method.grid)}")
    else:
        say(f"compiling {method.name} ({position}) at its defaults")
    try:
        start = time.perf_counter()
        if tuning == "grid":
            chosen, table = _tune(runner, method, batch, vmap_seeds)
        else:
            chosen, table = method.default, {"setting": method.setting, "grid": [], "chosen": method.default}
        wall = time.perf_counter() - start
        warm = lambda: runner.run(method, chosen, param(0))
        _, first = _timed(warm)
        _, second = _timed(warm)
    except Exception as err:  # noqa: BLE001 - one method failing must not end the comparison
        what = "while tuning" if tuning == "grid" else "at its defaults"
        say(f"{method.name} failed {what}: {_describe(err)}")
        return {"error": _describe(err)}
    return {"chosen": chosen, "tuning": table | {"wall_s": wall}, "compile_s": max(first - second, 0.0)}


def _time_interleaved(runner, task, methods, journal, param, seeds, repeats, warm, say):
    """Wall time of every (method, seed), repetitions interleaved A B A B ... so
    machine noise falls on all methods alike; each timed run is a journal unit. A
    method not compiled in this process (`warm`) gets an untimed call first. In a
    run of several processes each times its share of the seeds; the units are
    shared after every repetition."""

    def seed_units(rep, i):
        units = {}
        for method in methods:
            key, tune = f"run/{method.name}/{i}/{rep}", journal[f"tune/{method.name}"]
            first = journal.units.get(f"run/{method.name}/{i}/0", {})
            if key in journal or "error" in tune or "error" in first:
                continue
            call = lambda: runner.run(method, tune["chosen"], param(i))
            try:
                if method.name not in warm:
                    _timed(call)
                    warm.add(method.name)
                res, t = _timed(call)
                unit = {"time_s": t}
                if rep == 0:
                    unit["record"] = _record(task, method, tune["chosen"], seeds[i], res)
            except Exception as err:  # noqa: BLE001
                say(f"{method.name} seed {seeds[i]} failed: {_describe(err)}")
                unit = {"error": _describe(err)}
            journal[key] = units[key] = unit
            say.advance()
        return units

    for rep in range(repeats):
        say(f"timing repetition {rep + 1}/{repeats}: {plural(len(methods), 'method')} x "
            f"{plural(len(seeds), 'seed')}")
        for units in split_over_processes(range(len(seeds)), lambda i: seed_units(rep, i)):
            journal.update(units)


def _timed(fn):
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


def _assemble(method, i, seed, journal, repeats) -> dict:
    """The record of one tuned (method, seed) from its journal units."""
    tune = journal[f"tune/{method.name}"]
    if "error" in tune:
        what = "while tuning" if journal.config["tuning"] == "grid" else "at its defaults"
        return _failed_record(method, seed, None, f"failed {what}: {tune['error']}")
    units = [journal.units.get(f"run/{method.name}/{i}/{rep}", {}) for rep in range(repeats)]
    if "error" in units[0]:
        return _failed_record(method, seed, tune["chosen"], units[0]["error"])
    reps = [u["time_s"] for u in units if "time_s" in u]
    return units[0]["record"] | {"time_s": float(np.median(reps)), "compile_s": tune["compile_s"],
                                 "time_repeats_s": reps}


def _grid_runs(method: Method, seeds, tuning: str) -> int:
    """Runs of `method`'s tuning grid: a run per value and seed (none untuned)."""
    return len(method.grid) * len(seeds) if tuning == "grid" and method.kind != "scipy" else 0


def _progress(report, journal, methods, seeds, repeats) -> Progress:
    """Progress counted in runs: a tuning grid is a run per value and seed, then a
    run per timed (method, seed, repetition) and per scipy (method, seed)."""
    total = done = 0
    tuning = journal.config["tuning"]
    for m in methods:
        units = ([f"scipy/{m.name}/{i}" for i in range(len(seeds))] if m.kind == "scipy" else
                 [f"run/{m.name}/{i}/{r}" for i in range(len(seeds)) for r in range(repeats)])
        total += len(units) + _grid_runs(m, seeds, tuning)
        done += sum(u in journal for u in units)
        if f"tune/{m.name}" in journal:
            done += _grid_runs(m, seeds, tuning)
    return Progress(report, total, done)


def compare(
    task: str | Task,
    methods: Sequence[str],
    *,
    seeds: int | Sequence[int] = 8,
    target: float = 1e-3,
    max_steps: int = 20_000,
    repeats: int = 3,
    scipy_time_cap: float = 30.0,
    dtype=jnp.float64,
    progress: Callable[[str], None] | None = None,
    vmap_seeds: bool | None = None,
    grids: dict[str, Sequence] | None = None,
    max_solver_steps: int | None = None,
    journal: str | os.PathLike | None = None,
    resume: bool = False,
    devices: int | None = None,
    tuning: str = "grid",
) -> CompareResult:
    """Train `task` with every method from the same initial parameters per seed.

    With `tuning="grid"` (the default), optax methods get their learning rate and ODE
    methods their tolerance (Euler its step) from a grid, chosen on the same seeds
    (most seeds reaching the target, then least gradient-equivalent work); the grids
    and their wall time (the tuning cost) are reported. With `tuning="none"` every
    method runs at its defaults (`Method.default`: Adam at 1e-3, gradient descent at
    0.01, every ODE method with `gradient_flow`'s own defaults), as a new user calls
    it; a method whose defaults raise is recorded as failed. Each method is then timed
    per seed, `repeats` times interleaved across methods (median kept), after a
    warm-up call that measures compile time. scipy methods run once per seed,
    untuned, at rtol 1e-6 and atol 1e-8, capped at `scipy_time_cap` seconds.

    **Arguments:** `task` (name or `Task`), `methods` (names, see `method_names()`),
    `seeds` (count or list), `target` (full-batch loss), `max_steps` (iterations or
    solver steps), `repeats`, `scipy_time_cap`, `dtype` (of a task given by name),
    `progress` (called with a line of text as work proceeds), `vmap_seeds` (tune
    all seeds in one vmapped program; default: for tasks up to
    `VMAP_PARAM_LIMIT` parameters, where batching pays; larger tasks run seed by
    seed, since under `vmap` every seed waits for the slowest one's solver loops),
    `grids` (replace some methods' tuning grids, e.g. `{"adam": [0.01, 0.1]}`;
    reported with the results), `max_solver_steps` (cap on the steps of ODE
    methods, default `max_steps`; an implicit step can cost hundreds of Hessian
    products, an optimizer iteration one gradient), `journal` (a JSON file where
    every finished unit of work, one method's tuning or one timed run, is saved
    atomically as the run goes) and `resume` (continue from an existing `journal`;
    the settings must be the same; without it an existing journal is an error),
    `devices` (how many local devices the vmapped seeds are split over, default
    all: `jax.sharding` with `shard_map`, results identical to one device),
    `tuning` (`"grid"` or `"none"`, above). In a
    run of several processes (`jax.distributed.initialize`; the CLI's
    `--coordinator-address` and so on) the vmapped seeds are split over `devices`
    devices of every process, the seed-by-seed work (timed runs, scipy, tuning
    without `vmap`) is divided between the processes, and every process returns
    the whole result; only process 0 writes the `journal`.

    A method that raises, or whose run diverges (NaN loss, integrator failure), is
    recorded as failed for that seed with its `reason`; the others go on. Results
    are deterministic on CPU: same settings, same records (times aside), whether
    run at once or interrupted and resumed.

    **Returns:** a `CompareResult`; see `odeflow.comparison.write_report` for files.
    """
    if not isinstance(task, (str, Task)):
        raise TypeError(f"task must be a task name such as 'parity4' (see odeflow.problems.task_names()) "
                        f"or an odeflow.problems.Task, got {type(task).__name__}; compare one task per call")
    task = get_task(task, dtype=dtype) if isinstance(task, str) else task
    if isinstance(methods, str):  # "adam,auto" as on the command line
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    methods = [get_method(m) for m in methods]
    for name, grid in (grids or {}).items():
        if name not in [m.name for m in methods]:
            raise ValueError(f"grids names {name!r}, which is not among the methods")
        if len(grid) == 0:
            raise ValueError(f"the grid for {name!r} is empty")
        methods = [dataclasses.replace(m, grid=tuple(grid)) if m.name == name else m
                   for m in methods]
    if not methods:
        raise ValueError("methods is empty; pass names such as ['adam', 'tsit5']")
    if tuning not in TUNINGS:
        choices = "; ".join(f"{k!r}: {v}" for k, v in TUNINGS.items())
        raise ValueError(f"tuning must be one of {choices}; got {tuning!r}")
    if grids and tuning != "grid":
        raise ValueError("grids are used only with tuning='grid'; drop grids or tuning='none'")
    if not (np.isfinite(target) and target > 0):
        raise ValueError(f"target must be a positive loss, got {target}")
    max_solver_steps = max_steps if max_solver_steps is None else max_solver_steps
    if repeats < 1 or max_steps < 1 or max_solver_steps < 1:
        raise ValueError("repeats, max_steps and max_solver_steps must be positive integers")
    seeds = _seeds(seeds)
    batch = task.init_batch(seeds)
    param = lambda i: jax.tree.map(lambda x: x[i], batch)
    devices = device_count(devices)
    runner = _Runner(task, target, max_steps, max_solver_steps, devices)
    tuned = [m for m in methods if m.kind != "scipy"]
    if vmap_seeds is None:
        vmap_seeds = task.num_params <= VMAP_PARAM_LIMIT
    config = {
        "task": task.name, "task_description": task.description, "num_params": task.num_params,
        "target": target, "seeds": seeds, "methods": [m.name for m in methods],
        "tuning": tuning, "grids": {m.name: list(m.grid) if tuning == "grid" else [] for m in methods},
        "max_steps": max_steps, "max_solver_steps": max_solver_steps, "repeats": repeats,
        "scipy_time_cap_s": scipy_time_cap,
        "vmap_seeds": vmap_seeds, "devices": devices if vmap_seeds else 1,
        "processes": jax.process_count(),
        "dtype": str(jax.tree.leaves(batch)[0].dtype),
    }
    journal = Journal(config, journal, resume)
    say = _progress(progress, journal, methods, seeds, repeats)
    if jax.process_count() > 1:
        count, me = jax.process_count(), jax.process_index()
        say(f"process {me} of {count}: vmapped seeds over {devices} device(s) of each process; "
            f"seed-by-seed runs here for seeds {seeds[me::count]}")
    warm = set()  # methods compiled in this process
    for k, method in enumerate(tuned):
        if f"tune/{method.name}" not in journal:
            journal[f"tune/{method.name}"] = _tune_unit(runner, method, batch, param, say, vmap_seeds,
                                                        f"method {k + 1} of {len(tuned)}", tuning)
            say.advance(_grid_runs(method, seeds, tuning))
            warm.add(method.name)
    _time_interleaved(runner, task, tuned, journal, param, seeds, repeats, warm, say)
    for method in methods:
        if method.kind == "scipy":
            journal.update(_scipy_units(task, method, journal, param, seeds, target, scipy_time_cap, say))
    records = [_assemble(method, i, seed, journal, repeats) if method.kind != "scipy"
               else journal[f"scipy/{method.name}/{i}"]
               for method in methods for i, seed in enumerate(seeds)]
    tables = {m.name: journal[f"tune/{m.name}"].get("tuning", {"setting": m.setting, "grid": [],
                                                                "chosen": None, "wall_s": None})
              for m in tuned}
    return CompareResult(records=records, tuning=tables, config=journal.config)
