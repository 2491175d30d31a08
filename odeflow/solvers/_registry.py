"""Solvers by name: every `solver=` argument takes a diffrax solver or one of these.

A new solver is one module with an `AbstractCountedSolver` subclass and one line
here."""

from __future__ import annotations

from typing import Callable

import diffrax as dfx

from ._auto import AutoSwitch
from ._esdirk import ESDIRK
from ._erk import ERK
from ._linear import CG, GMRES, Dense
from ._protocol import AbstractCountedSolver
from ._pseudo_transient import PseudoTransient
from ._quasi_newton import SecantPseudoTransient
from ._rosenbrock import ROS2

_NEWTON_KRYLOV = dict(rtol=1e-2, max_iters=30)  # a loose forcing term: Newton corrects it

_SOLVERS: dict[str, tuple[Callable[[], dfx.AbstractSolver], str]] = {
    "auto": (AutoSwitch, "Tsit5 <-> Kvaerno3 by automatic stiffness detection (LSODA-like)"),
    "euler": (ERK.euler, "explicit Euler, fixed step (gradient descent); needs dt0"),
    "rk4": (ERK.rk4, "classical Runge-Kutta, order 4, fixed step; needs dt0"),
    "heun": (lambda: ERK.of(dfx.Heun), "Heun's method, order 2, adaptive"),
    "midpoint": (lambda: ERK.of(dfx.Midpoint), "explicit midpoint, order 2, adaptive"),
    "bosh3": (lambda: ERK.of(dfx.Bosh3), "Bogacki-Shampine 3(2), adaptive"),
    "tsit5": (lambda: ERK.of(dfx.Tsit5), "Tsitouras 5(4), adaptive, non-stiff"),
    "dopri5": (lambda: ERK.of(dfx.Dopri5), "Dormand-Prince 5(4), adaptive, non-stiff"),
    "dopri8": (lambda: ERK.of(dfx.Dopri8), "Dormand-Prince 8(7), adaptive, non-stiff"),
    "implicit-euler": (ESDIRK.implicit_euler, "backward Euler, L-stable, AD Jacobian"),
    "kvaerno3": (ESDIRK.kvaerno3, "Kvaerno 3(2) ESDIRK, L-stable, AD Jacobian"),
    "kvaerno5": (ESDIRK.kvaerno5, "Kvaerno 5(4) ESDIRK, L-stable, AD Jacobian"),
    "implicit-euler-gmres": (
        lambda: ESDIRK.implicit_euler(linear_solver=GMRES(**_NEWTON_KRYLOV)),
        "backward Euler, Newton-Krylov (GMRES on Jacobian-vector products)",
    ),
    "kvaerno3-gmres": (
        lambda: ESDIRK.kvaerno3(linear_solver=GMRES(**_NEWTON_KRYLOV)),
        "Kvaerno 3(2), Newton-Krylov (GMRES on Jacobian-vector products)",
    ),
    "kvaerno3-cg": (
        lambda: ESDIRK.kvaerno3(linear_solver=CG(**_NEWTON_KRYLOV)),
        "Kvaerno 3(2), Newton-Krylov with CG, symmetric J only (gradient flows)",
    ),
    "kvaerno5-gmres": (
        lambda: ESDIRK.kvaerno5(linear_solver=GMRES(**_NEWTON_KRYLOV)),
        "Kvaerno 5(4), Newton-Krylov (GMRES on Jacobian-vector products)",
    ),
    "ros2": (ROS2, "Rosenbrock-W ROS2, linearly implicit, dense AD Jacobian"),
    "ros2-gmres": (
        lambda: ROS2(linear_solver=GMRES(rtol=1e-6, max_iters=50)),
        "ROS2, matrix-free GMRES on Jacobian-vector products",
    ),
    "ros2-cg": (
        lambda: ROS2(linear_solver=CG(rtol=1e-2, max_iters=50)),
        "ROS2, matrix-free CG (loose, 1e-2) on Hessian-vector products: gradient flows",
    ),
    "ptc": (
        PseudoTransient,
        "pseudo-transient continuation to the steady state, SER steps, matrix-free CG",
    ),
    "ptc-gmres": (
        lambda: PseudoTransient(linear_solver=GMRES(rtol=1e-2, max_iters=50)),
        "pseudo-transient continuation, matrix-free GMRES (any Jacobian)",
    ),
    "ptc-dense": (
        lambda: PseudoTransient(linear_solver=Dense()),
        "pseudo-transient continuation, dense AD Jacobian and LU",
    ),
    "ptc-lbfgs": (
        SecantPseudoTransient,
        "pseudo-transient continuation, L-BFGS curvature from field differences: "
        "one evaluation per step, no Jacobian products (gradient flows)",
    ),
}


def solver_names() -> list[str]:
    """Registered solver names, in registry order."""
    return list(_SOLVERS)


def describe_solvers() -> dict[str, str]:
    """Registered solver names with a one-line description each."""
    return {name: doc for name, (_, doc) in _SOLVERS.items()}


def get_solver(solver: str | dfx.AbstractSolver) -> dfx.AbstractSolver:
    """A diffrax solver instance from an instance or a registered name.

    Raises `ValueError` for an unknown name (listing the valid ones) and `TypeError`
    for anything else."""
    if isinstance(solver, dfx.AbstractSolver):
        return solver
    if isinstance(solver, str):
        try:
            factory, _ = _SOLVERS[solver.lower()]
        except KeyError:
            valid = ", ".join(_SOLVERS)
            raise ValueError(
                f"unknown solver {solver!r}; use one of: {valid}, or pass a diffrax "
                "solver instance"
            ) from None
        return factory()
    raise TypeError(
        f"solver must be a registered name or a diffrax.AbstractSolver, got "
        f"{type(solver).__name__}"
    )


def is_adaptive(solver: dfx.AbstractSolver) -> bool:
    """Whether the solver provides an error estimate for adaptive step sizes."""
    if isinstance(solver, AbstractCountedSolver):
        return solver.adaptive
    return isinstance(solver, dfx.AbstractAdaptiveSolver)
