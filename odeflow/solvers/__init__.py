"""Integrators: registered solver names, odeflow's own counted solvers, `solve`."""

from ._auto import AutoSwitch
from ._erk import ERK, ExplicitTableau
from ._esdirk import ESDIRK, Tableau
from ._linearize import LinearizedTerm
from ._pseudo_transient import PseudoTransient, SERController
from ._rosenbrock import ROS2
from ._registry import describe_solvers, get_solver, is_adaptive, solver_names
from ._solve import Solution, solve
from ._stats import NOT_COUNTED, SolverStats

__all__ = [
    "AutoSwitch",
    "ERK",
    "ESDIRK",
    "ExplicitTableau",
    "LinearizedTerm",
    "NOT_COUNTED",
    "PseudoTransient",
    "ROS2",
    "Solution",
    "SERController",
    "SolverStats",
    "Tableau",
    "describe_solvers",
    "get_solver",
    "is_adaptive",
    "solve",
    "solver_names",
]
