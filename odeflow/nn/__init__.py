"""Neural ODE models as equinox modules on diffrax: `ODEBlock` with every gradient
method (`GRADIENTS`), and `gradient_check` to compare them (errors and NFE)."""

from ._block import ODEBlock
from ._diagnostics import EvaluationCounter, counted, gradient_check
from ._gradients import GRADIENTS

__all__ = ["GRADIENTS", "EvaluationCounter", "ODEBlock", "counted", "gradient_check"]
