"""Neural ODE models as equinox modules on diffrax: `ODEBlock` with every gradient
method (`GRADIENTS`), `AugmentedODEBlock` and `ChangeDimension`; classifiers
`ODENet`, `ResNet` and `RKNet`, and the `CNN` baseline; the `LatentODE` and its
`RNNBaseline`; the continuous normalising flow `CNF`; the kinetic and Jacobian
penalties (`solve_penalised`); `MultipleShooting` for long trajectories; and
`gradient_check` to compare the gradient methods."""

from ._augmented import AugmentedODEBlock, ChangeDimension
from ._block import ODEBlock
from ._cnf import CNF
from ._classifiers import (
    CNN,
    AbstractClassifier,
    ConvField,
    MLPField,
    ODENet,
    ResNet,
    RKNet,
    parameter_count,
    same_convolution,
)
from ._diagnostics import EvaluationCounter, counted, gradient_check
from ._gradients import GRADIENTS
from ._latent import LatentODE, RNNBaseline, extrapolation_rmse, gaussian_nll
from ._penalties import Penalties, solve_penalised
from ._shooting import MultipleShooting, segments, shooting_loss

__all__ = [
    "GRADIENTS",
    "AbstractClassifier",
    "AugmentedODEBlock",
    "CNF",
    "CNN",
    "ChangeDimension",
    "ConvField",
    "EvaluationCounter",
    "LatentODE",
    "MLPField",
    "MultipleShooting",
    "ODEBlock",
    "ODENet",
    "Penalties",
    "RKNet",
    "RNNBaseline",
    "ResNet",
    "counted",
    "extrapolation_rmse",
    "gaussian_nll",
    "gradient_check",
    "parameter_count",
    "same_convolution",
    "segments",
    "shooting_loss",
    "solve_penalised",
]
