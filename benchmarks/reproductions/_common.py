"""The reproductions scripts' settings and writers (benchmarks/_shared.py), with their
results in benchmarks/results/reproductions."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _shared import RESULTS, table, write  # noqa: E402
from _shared import settings as _settings  # noqa: E402

__all__ = ["backward_nfe", "settings", "table", "write"]


def settings(doc, full, quick, argv=None):
    return _settings(doc, full, quick, argv, RESULTS / "reproductions")


def backward_nfe(model, loss_fn, batch, key=None):
    """Vector-field products in the backward pass of one gradient of
    `loss_fn(model, batch, key)`, counted on the host in every ODE block (`key`
    for losses that sample, such as a latent ODE's ELBO)."""
    import equinox as eqx
    import jax

    from odeflow import fitting, nn

    counter = nn.EvaluationCounter()
    probe = fitting.map_blocks(model, lambda b: nn.counted(b, counter))
    # compiled as one program: run eagerly, each operation outside the solves' loops
    # is compiled on its own, which took 1.7x as long on the reproductions' models
    eqx.filter_jit(eqx.filter_grad(lambda m: loss_fn(m, batch, key)[0]))(probe)
    jax.effects_barrier()
    return counter.vjp + counter.jvp
