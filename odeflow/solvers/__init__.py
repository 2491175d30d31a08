"""Integrators: registered solver names, odeflow's own counted solvers, `solve`.

Every odeflow solver is a diffrax solver (`AbstractCountedSolver`) that also
reports the work of each step; `odeflow.solve` counts it without changing a step."""

from ._auto import AutoSwitch as AutoSwitch
from ._counting import count_work as count_work
from ._counting import work_totals as work_totals
from ._esdirk import ESDIRK as ESDIRK
from ._erk import ERK as ERK
from ._linear import CG as CG
from ._linear import GMRES as GMRES
from ._linear import AbstractLinearSolver as AbstractLinearSolver
from ._linear import AutoLinearSolver as AutoLinearSolver
from ._linear import Dense as Dense
from ._newton import Newton as Newton
from ._protocol import AbstractCountedSolver as AbstractCountedSolver
from ._protocol import StepReport as StepReport
from ._protocol import Work as Work
from ._pseudo_transient import PseudoTransient as PseudoTransient
from ._pseudo_transient import SERController as SERController
from ._quasi_newton import SecantPseudoTransient as SecantPseudoTransient
from ._registry import get_solver as get_solver
from ._registry import solver_names as solver_names
from ._rosenbrock import ROS2 as ROS2
from ._solve import Solution as Solution
from ._solve import pseudo_time_step as pseudo_time_step
from ._solve import solve as solve
from ._stats import NOT_COUNTED as NOT_COUNTED
from ._stats import Result as Result
from ._stats import SolverStats as SolverStats
from ._stepwise import StepCheckpointAdjoint as StepCheckpointAdjoint
