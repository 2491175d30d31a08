"""Shared by the benchmark scripts (reproductions, peers, sensitivity,
work-precision): command-line settings (full or `--quick`), the results folder, and
writing JSON + Markdown with the machine named."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from odeflow.comparison._report import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def settings(doc: str, full: dict, quick: dict, argv=None, results: Path = RESULTS) -> tuple[dict, Path, bool]:
    """Parse `--quick` and `--out`; return the chosen settings, the output folder and
    whether this is a quick run."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test settings")
    parser.add_argument("--out", default=str(results), help="results folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return (quick if args.quick else full), out, args.quick


def write(out: Path, name: str, quick: bool, config: dict, results, markdown: str) -> None:
    """`<name>.json` (machine, command, config, results) and `<name>.md`; quick runs
    get a `_quick` suffix so they never overwrite the full results."""
    name = name + ("_quick" if quick else "")
    payload = dict(machine=machine_info(), command="python " + " ".join(map(shlex.quote, sys.argv)),
                   date=time.strftime("%Y-%m-%d"), config=config, results=results)
    # numpy scalars (scipy's counters, say) as plain numbers
    plain = lambda o: o.item() if hasattr(o, "item") else str(o)
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=plain))
    m = payload["machine"]
    (out / f"{name}.md").write_text(markdown + f"\n\n{m['cpu']}, {m['cores']} cores, jax {m['jax']}.\n")
    print(markdown, flush=True)


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
