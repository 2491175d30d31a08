"""Neural ODE models as equinox modules on diffrax: `ODEBlock` with every gradient
method (`GRADIENTS`), `AugmentedODEBlock` and `ChangeDimension`, and
`gradient_check` to compare the gradient methods (errors and NFE)."""

from ._augmented import AugmentedODEBlock, ChangeDimension
from ._block import ODEBlock
from ._diagnostics import EvaluationCounter, counted, gradient_check
from ._gradients import GRADIENTS

__all__ = [
    "GRADIENTS",
    "AugmentedODEBlock",
    "ChangeDimension",
    "EvaluationCounter",
    "ODEBlock",
    "counted",
    "gradient_check",
]
