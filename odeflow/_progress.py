"""Progress lines for long runs: the share of the work done and the time left."""

from __future__ import annotations

import sys
import time
from typing import Callable


def log_line(line: str) -> None:
    """`[HH:MM:SS] line` on standard error: one unwrapped line per report, readable in
    a terminal and in a log file."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


def plural(n: int, noun: str) -> str:
    """`1 seed`, `8 seeds`."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def duration(seconds: float) -> str:
    """`42 s`, `7 min`, `1.5 h`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Calls `report` with `[done/total runs, elapsed, ~left] line`. Work found done
    at the start (a resumed run) counts as done but not in the rate."""

    def __init__(self, report: Callable[[str], None] | None, total: int, done: int = 0):
        self.report, self.total, self.done, self._base = report, total, done, done
        self._start = time.perf_counter()

    def advance(self, runs: int = 1) -> None:
        self.done += runs

    def __call__(self, line: str) -> None:
        if self.report is None:
            return
        elapsed = time.perf_counter() - self._start
        rate = (self.done - self._base) / elapsed if elapsed > 0 else 0.0
        left = f", ~{duration((self.total - self.done) / rate)} left" if rate > 0 and self.done < self.total else ""
        self.report(f"[{self.done}/{self.total} runs, {duration(elapsed)}{left}] {line}")
