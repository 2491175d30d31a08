"""Training by gradient flow and the optax baseline, with one result type."""

from ._curvature import (
    AbstractCurvature,
    CompositeLoss,
    GaussNewton,
    Hessian,
    gauss_newton_products,
)
from ._error_control import (
    AbstractErrorSpace,
    FlowErrorController,
    LossSpace,
    OutputSpace,
    ParameterSpace,
)
from ._flow import default_flow_solver, gradient_flow
from ._levenberg_marquardt import levenberg_marquardt
from ._optimize import optimize
from ._runge_kutta import RungeKuttaState, runge_kutta
from ._result import STATUSES, FlowResult

__all__ = [
    "AbstractCurvature",
    "AbstractErrorSpace",
    "CompositeLoss",
    "FlowErrorController",
    "FlowResult",
    "GaussNewton",
    "Hessian",
    "LossSpace",
    "OutputSpace",
    "ParameterSpace",
    "default_flow_solver",
    "STATUSES",
    "gauss_newton_products",
    "gradient_flow",
    "levenberg_marquardt",
    "optimize",
    "RungeKuttaState",
    "runge_kutta",
]
