"""Training by gradient flow and the optax baseline, with one result type."""

from ._curvature import CURVATURES, CompositeLoss, gauss_newton_products
from ._error_control import ERROR_SPACES, FlowErrorController
from ._flow import gradient_flow
from ._levenberg_marquardt import levenberg_marquardt
from ._optimize import optimize
from ._runge_kutta import RungeKuttaState, runge_kutta
from ._result import STATUSES, FlowResult

__all__ = [
    "CURVATURES",
    "CompositeLoss",
    "ERROR_SPACES",
    "FlowErrorController",
    "FlowResult",
    "STATUSES",
    "gauss_newton_products",
    "gradient_flow",
    "levenberg_marquardt",
    "optimize",
    "RungeKuttaState",
    "runge_kutta",
]
