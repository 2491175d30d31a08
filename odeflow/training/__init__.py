"""Training by gradient flow and the optax baseline, with one result type."""

from ._flow import gradient_flow
from ._optimize import optimize
from ._result import STATUSES, FlowResult

__all__ = ["FlowResult", "STATUSES", "gradient_flow", "optimize"]
