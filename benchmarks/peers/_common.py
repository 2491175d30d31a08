"""The peers scripts' settings and writers (benchmarks/_shared.py), with their
results in benchmarks/results/peers, and the versions of the peers themselves."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _shared import RESULTS, table, write  # noqa: E402
from _shared import settings as _settings  # noqa: E402

__all__ = ["NOT_INSTALLED", "settings", "table", "torch_versions", "write"]

NOT_INSTALLED = {"torch": "not installed (pip install -e '.[bench]')"}


def settings(doc, full, quick, argv=None):
    return _settings(doc, full, quick, argv, RESULTS / "peers")


def torch_versions() -> dict | None:
    """torch's and torchdiffeq's versions and torch's thread count; None when they
    are not installed (the scripts then run odeflow's side alone)."""
    try:
        import torch
        import torchdiffeq
    except ImportError:
        return None
    return {"torch": torch.__version__, "torchdiffeq": torchdiffeq.__version__,
            "torch_threads": torch.get_num_threads()}
