"""Stiff test problems shared by the solver tests (imported, not collected)."""

import jax.numpy as jnp


def robertson(t, y, args):
    """Robertson's chemical kinetics (Hairer & Wanner, "Solving ODEs II", IV.1)."""
    y1, y2, y3 = y
    return jnp.stack([-0.04 * y1 + 1e4 * y2 * y3,
                      0.04 * y1 - 1e4 * y2 * y3 - 3e7 * y2**2,
                      3e7 * y2**2])
