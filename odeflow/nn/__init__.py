"""Neural ODE models as equinox modules on diffrax: `ODEBlock` with every gradient
method (`GRADIENTS`), `AugmentedODEBlock` and `ChangeDimension`; classifiers
`ODENet`, `ResNet` and `RKNet`; the kinetic and Jacobian penalties
(`solve_penalised`); and `gradient_check` to compare the gradient methods."""

from ._augmented import AugmentedODEBlock, ChangeDimension
from ._block import ODEBlock
from ._classifiers import (
    KINDS,
    AbstractClassifier,
    ConvField,
    MLPField,
    ODENet,
    ResNet,
    RKNet,
    parameter_count,
)
from ._diagnostics import EvaluationCounter, counted, gradient_check
from ._gradients import GRADIENTS
from ._penalties import Penalties, solve_penalised

__all__ = [
    "GRADIENTS",
    "KINDS",
    "AbstractClassifier",
    "AugmentedODEBlock",
    "ChangeDimension",
    "ConvField",
    "EvaluationCounter",
    "MLPField",
    "ODEBlock",
    "ODENet",
    "Penalties",
    "RKNet",
    "ResNet",
    "counted",
    "gradient_check",
    "parameter_count",
    "solve_penalised",
]
