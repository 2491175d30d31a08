"""odeflow: neural networks meet ordinary differential equations, in JAX.

The main entry points are functions at the top level:

- `solve`: an ODE solve with odeflow's counted stiff and non-stiff solvers, returning
  the solution and its `SolverStats`.
- `gradient_flow` and `optimize`: train a model's parameters by solving the gradient
  flow dθ/dt = -∇L(θ), or with an optax optimizer, both returning a `FlowResult`.
- `fit`: minibatch training of models with ODE blocks (`odeflow.nn`), returning a
  `FitResult`.
- `compare`: gradient flows and optax optimizers side by side on the same problems,
  returning a `CompareResult`.

Subpackages: `solvers`, `flow` (gradient flows and their optax baselines), `nn`
(neural ODE models), `fitting` (the minibatch loop and its losses, checkpoints and
plots), `comparison` (reports of `compare`), `problems` (stiff test ODEs and
training tasks), `data` and `diagnostics`.
"""

from . import comparison, data, diagnostics, fitting, flow, nn, problems, solvers
from .comparison import CompareResult as CompareResult, compare as compare
from .fitting import FitResult as FitResult, fit as fit
from .flow import FlowResult as FlowResult, gradient_flow as gradient_flow, optimize as optimize
from .solvers import Solution as Solution, SolverStats as SolverStats, solve as solve

__version__ = "0.2.0"

__all__ = [
    "CompareResult",
    "FitResult",
    "FlowResult",
    "Solution",
    "SolverStats",
    "comparison",
    "compare",
    "data",
    "diagnostics",
    "fit",
    "fitting",
    "flow",
    "gradient_flow",
    "nn",
    "optimize",
    "problems",
    "solve",
    "solvers",
]
