"""Training methods by name for `compare` and the CLI, each with its tuning grid."""

from __future__ import annotations

import dataclasses
from typing import Callable

import optax

from ..solvers import solver_names

LR_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
ADAM_GRID = (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0)
RTOL_GRID = (1e-2, 1e-3, 1e-4)
ROSENBROCK_GRID = (1e-1, 1e-2, 1e-3)  # second order: looser tolerances suffice
PTC_GRID = (1e-2, 1e-1, 1.0, 10.0)  # first pseudo-time step
DAMPING_GRID = (1e-3, 1e-1, 10.0)  # initial Levenberg-Marquardt damping
SCIPY_TOLERANCES = (1e-6, 1e-8)  # (rtol, atol) as a plain scipy user would set them
SGD_DEFAULT_LR = 0.01  # optax.sgd has no default learning rate; Keras's SGD default
ADAM_DEFAULT_LR = 1e-3  # Kingma & Ba's default, as in Keras and PyTorch


@dataclasses.dataclass(frozen=True)
class Method:
    """A training method.

    - `kind`: `"optax"` (grid over learning rates), `"flow"` (an ODE solver; grid
      over `rtol` with `atol = rtol`, or over the step `dt0` for fixed-step Euler
      and pseudo-transient continuation), `"lm"` (Levenberg-Marquardt, grid over
      the initial damping) or `"scipy"` (scipy.integrate with a finite-difference
      Jacobian, untuned, at rtol 1e-6, atol 1e-8).
    - `grid`: the values tried; `setting` names what they are.
    - `solver`: the registered solver of a flow method (default: `name`).
    - `curvature`: `"hessian"` or `"gauss-newton"` for implicit flow methods.
    - `default`: the setting a user gets without tuning (`compare(tuning="none")`):
      a learning rate where the optimizer needs one, else `None` (the function's own
      defaults: `gradient_flow`'s tolerances, horizon and first step, L-BFGS's line
      search, Levenberg-Marquardt's damping).
    """

    name: str
    kind: str
    description: str
    grid: tuple
    setting: str
    make_optimizer: Callable[[], optax.GradientTransformation] | None = None
    solver: str | None = None
    curvature: str = "hessian"
    default: float | None = None


def _adam():
    return optax.inject_hyperparams(optax.adam)(learning_rate=ADAM_DEFAULT_LR)


def _gd():
    return optax.inject_hyperparams(optax.sgd)(learning_rate=SGD_DEFAULT_LR)


def _momentum():
    return optax.inject_hyperparams(optax.sgd)(learning_rate=SGD_DEFAULT_LR, momentum=0.9)


_METHODS = {
    "gd": Method("gd", "optax", "gradient descent (optax.sgd)", LR_GRID, "lr", _gd,
                 default=SGD_DEFAULT_LR),
    "momentum": Method(
        "momentum", "optax", "heavy ball, momentum 0.9", LR_GRID[:-2], "lr", _momentum,
        default=SGD_DEFAULT_LR,
    ),
    "adam": Method("adam", "optax", "Adam (optax.adam)", ADAM_GRID, "lr", _adam,
                   default=ADAM_DEFAULT_LR),
    "lbfgs": Method(
        "lbfgs", "optax", "L-BFGS with zoom line search (optax.lbfgs)", (None,), "lr", optax.lbfgs
    ),
    "euler": Method("euler", "flow", "explicit Euler, fixed step (= gd)", LR_GRID, "dt0"),
    "scipy-vode-bdf": Method(
        "scipy-vode-bdf", "scipy", "scipy vode BDF, FD Jacobian", (SCIPY_TOLERANCES,), "rtol,atol"
    ),
    "scipy-lsoda": Method(
        "scipy-lsoda", "scipy", "scipy LSODA, FD Jacobian", (SCIPY_TOLERANCES,), "rtol,atol"
    ),
}
_FLOWS = ("tsit5", "dopri5", "implicit-euler", "kvaerno3", "kvaerno5", "kvaerno3-cg",
          "kvaerno3-gmres", "ros2", "ros2-cg")
for _name in _FLOWS:
    assert _name in solver_names()
    _grid = ROSENBROCK_GRID if _name.startswith("ros2") else RTOL_GRID
    _METHODS[_name] = Method(_name, "flow", f"gradient flow, {_name}", _grid, "rtol")
_METHODS["auto"] = Method(
    "auto", "flow", "gradient_flow's default with a target: pseudo-transient continuation from "
    "an automatic first step", (None,), "–",
)
_METHODS["auto-flow"] = Method(
    "auto-flow", "flow", "gradient flow, Tsit5 switching to ROS2 (trajectory-following)", RTOL_GRID,
    "rtol",
)
_METHODS["ros2-gn"] = Method(
    "ros2-gn", "flow", "gradient flow, ROS2 with CG on Gauss-Newton products", ROSENBROCK_GRID,
    "rtol", solver="ros2-cg", curvature="gauss-newton",
)
_METHODS["ptc"] = Method(
    "ptc", "flow", "pseudo-transient continuation, CG on Hessian products", PTC_GRID, "dt0"
)
_METHODS["ptc-gn"] = Method(
    "ptc-gn", "flow", "pseudo-transient continuation, CG on Gauss-Newton products", PTC_GRID,
    "dt0", solver="ptc", curvature="gauss-newton",
)
_METHODS["ptc-lbfgs"] = Method(
    "ptc-lbfgs", "flow", "pseudo-transient continuation, L-BFGS curvature (one gradient per step)",
    (None,), "–",
)
_METHODS["lm"] = Method(
    "lm", "lm", "Levenberg-Marquardt, CG on Gauss-Newton products", DAMPING_GRID, "damping"
)


def method_names() -> list[str]:
    return list(_METHODS)


def get_method(name: str) -> Method:
    """The method registered as `name`, whatever its case (`"Adam"` is `"adam"`)."""
    key = str(name).strip().lower()
    if key not in _METHODS:
        raise ValueError(f"unknown method {name!r}; use one of: {', '.join(_METHODS)}")
    return _METHODS[key]
