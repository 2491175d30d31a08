"""Stiffness diagnostics for gradient flows (matrix-free, Hessian-vector products)."""

from ._stiffness import (
    Spectrum,
    StiffnessCheck,
    hessian_spectrum,
    hvp,
    stiffness_check,
    stiffness_profile,
)

__all__ = ["Spectrum", "StiffnessCheck", "hessian_spectrum", "hvp", "stiffness_check", "stiffness_profile"]
