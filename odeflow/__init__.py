"""odeflow: neural networks meet ordinary differential equations, in JAX.

Public API: `solve`, `SolverStats`, `Solution`, `gradient_flow`, `optimize`,
`FlowResult`, `compare`, and the subpackages `solvers`, `tasks`, `diagnostics`,
`training` (gradient flows), `compare`, `nn` (neural ODE models), `train` (their
minibatch training loop), `data` and `problems` (stiff test problems).
"""

from . import data, diagnostics, nn, problems, solvers, tasks, train, training
from .compare import CompareResult, compare
from .solvers import Solution, SolverStats, solve
from .training import FlowResult, gradient_flow, optimize

__version__ = "0.1.0"

__all__ = [
    "CompareResult",
    "FlowResult",
    "Solution",
    "SolverStats",
    "compare",
    "data",
    "diagnostics",
    "gradient_flow",
    "nn",
    "optimize",
    "problems",
    "solve",
    "solvers",
    "tasks",
    "train",
    "training",
]
