"""The `odeflow` command line: `odeflow compare`, `odeflow tasks`, `odeflow methods`."""

from __future__ import annotations

import argparse
import math
import shlex
import sys


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; e.g. 1e-3") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number; e.g. 1e-3")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; e.g. 8") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive integer; e.g. 8")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="odeflow",
        description="Train networks by solving their gradient-flow ODE, side by side "
        "with tuned optax optimizers.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="compare training methods on one task")
    cmp.add_argument("--task", default="parity4", help="task name (see `odeflow tasks`)")
    cmp.add_argument("--methods", default="adam,gd,tsit5,auto",
                     help="comma-separated method names (see `odeflow methods`)")
    cmp.add_argument("--seeds", type=_positive_int, default=8, help="number of seeds")
    cmp.add_argument("--target", type=_positive_float, default=1e-3, help="target full-batch loss")
    cmp.add_argument("--max-steps", type=_positive_int, default=20_000,
                     help="iterations or solver steps per run")
    cmp.add_argument("--repeats", type=_positive_int, default=3, help="timed repetitions per seed")
    cmp.add_argument("--scipy-time-cap", type=_positive_float, default=30.0,
                     help="wall-time cap in seconds per scipy run")
    cmp.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    cmp.add_argument("--out", default="results", help="output folder for JSON, Markdown, PNG")
    cmp.add_argument("--resume", action="store_true",
                     help="continue an interrupted run from OUT/TASK.progress.json (same options)")
    cmp.add_argument("--devices", type=_positive_int, default=None,
                     help="local devices to split the vmapped seeds over (default: all); in a "
                     "run of several processes, this many of every process's")
    multi = cmp.add_argument_group(
        "several hosts", "jax.distributed.initialize settings; or the environment variables "
        "ODEFLOW_COORDINATOR_ADDRESS, ODEFLOW_NUM_PROCESSES, ODEFLOW_PROCESS_ID")
    multi.add_argument("--coordinator-address", help="host:port of process 0")
    multi.add_argument("--num-processes", type=_positive_int, help="processes in the run")
    multi.add_argument("--process-id", type=int, help="this process's index, from 0")
    sub.add_parser("tasks", help="list the tasks")
    sub.add_parser("methods", help="list the methods")
    return parser


def _compare(args) -> int:
    from .._distributed import initialize

    distributed = initialize(args.coordinator_address, args.num_processes, args.process_id)
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from rich.console import Console

    from ..comparison import compare, print_table, write_report
    from ..comparison._report import ensure_writable

    from ..comparison import get_method
    from ..problems import get_task, task_names

    # names first (nothing created for a typo), then the output folder, before the
    # run rather than after it
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in methods:
        get_method(method)
    if args.task not in task_names():
        get_task(args.task)  # raises, naming the valid tasks
    out = ensure_writable(args.out)
    # every finished unit of work is saved here as the run goes; removed once the
    # report is written
    journal = out / f"{args.task}.progress.json"
    console = Console(stderr=True)
    with console.status("starting") as status:
        result = compare(
            args.task, methods, seeds=args.seeds, target=args.target, max_steps=args.max_steps,
            repeats=args.repeats, scipy_time_cap=args.scipy_time_cap, dtype=args.dtype,
            progress=lambda line: (status.update(line), console.log(line)),
            journal=journal, resume=args.resume, devices=args.devices,
        )
    if distributed and jax.process_index() != 0:
        return 0  # every process computes the same records; process 0 writes them
    print_table(result)
    command = "odeflow " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    paths = write_report(result, out, command=command)
    journal.unlink(missing_ok=True)
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "tasks":
            from ..problems import get_task, task_names

            for name in task_names():
                print(f"{name:10s} {get_task(name, dtype='float32').description}")
            return 0
        if args.command == "methods":
            from ..comparison import get_method, method_names

            for name in method_names():
                print(f"{name:16s} {get_method(name).description}")
            return 0
        return _compare(args)
    except ValueError as err:
        print(f"odeflow: error: {err}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())
