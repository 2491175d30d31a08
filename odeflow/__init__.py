"""odeflow: neural networks meet ordinary differential equations, in JAX.

Public API: `solve`, `SolverStats`, `Solution`, `gradient_flow`, `optimize`,
`FlowResult`, `compare`, and the subpackages `solvers`, `tasks`, `diagnostics`,
`training`, `compare`, `nn`.
"""

from . import diagnostics, nn, solvers, tasks, training
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
    "diagnostics",
    "gradient_flow",
    "nn",
    "optimize",
    "solve",
    "solvers",
    "tasks",
    "training",
]
