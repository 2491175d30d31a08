"""Side-by-side training comparison: ODE solvers against tuned optax optimizers and
scipy's stiff integrators with finite-difference Jacobians."""

from ._methods import Method, get_method, method_names
from ._report import markdown, print_table, summarize, to_json, write_report
from ._runner import CompareResult, compare
from ._scipy import scipy_flow

__all__ = [
    "CompareResult", "Method", "compare", "get_method", "markdown", "method_names",
    "print_table", "scipy_flow", "summarize", "to_json", "write_report",
]
