"""The peers scripts' settings and writers (benchmarks/_shared.py), with their
results in benchmarks/results/peers."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _shared import RESULTS, table, write  # noqa: E402
from _shared import settings as _settings  # noqa: E402

__all__ = ["settings", "table", "write"]


def settings(doc, full, quick, argv=None):
    return _settings(doc, full, quick, argv, RESULTS / "peers")
