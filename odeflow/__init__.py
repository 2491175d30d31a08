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

from ._allocator import keep_freed_memory as _keep_freed_memory

# XLA's large temporary buffers on CPU stay with malloc between calls in place of
# being unmapped and faulted in again (odeflow/_allocator.py; opt out with
# ODEFLOW_KEEP_FREED_MEMORY=0)
_keep_freed_memory()

from . import comparison, data, diagnostics, fitting, flow, nn, problems, solvers  # noqa: E402
from .comparison import CompareResult as CompareResult, compare as compare  # noqa: E402
from .fitting import FitResult as FitResult, fit as fit  # noqa: E402
from .flow import FlowResult as FlowResult, gradient_flow as gradient_flow, optimize as optimize  # noqa: E402
from .solvers import Solution as Solution, SolverStats as SolverStats, solve as solve  # noqa: E402

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
