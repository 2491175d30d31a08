"""Neural ODE models as equinox modules on diffrax: `ODEBlock` with every gradient
method (`GRADIENTS`)."""

from ._block import ODEBlock
from ._gradients import GRADIENTS

__all__ = ["GRADIENTS", "ODEBlock"]
