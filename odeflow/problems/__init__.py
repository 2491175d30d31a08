"""Problems, under one roof: stiff test ODEs with their scipy references, and the
full-batch training tasks that gradient flows and optax optimizers are compared on.

Stiff ODEs (Hairer & Wanner, *Solving Ordinary Differential Equations II*, 1996):
`STIFF_PROBLEMS` by name (`"robertson"`, `"van_der_pol"`, `"hires"`), each a
`StiffProblem` with its vector field, interval and error scales, and
`reference_solution(problem, ts=...)` by scipy's Radau at tight tolerance.

Training tasks: `get_task("parity4")` builds a `Task` (data, initial parameters,
loss, metrics); `task_names()` lists them.
"""

from ._registry import get_task as get_task, task_names as task_names
from ._stiff import (
    STIFF_PROBLEMS as STIFF_PROBLEMS,
    StiffProblem as StiffProblem,
    hires as hires,
    numpy_field as numpy_field,
    reference_solution as reference_solution,
    robertson as robertson,
    van_der_pol as van_der_pol,
)
from ._task import Task as Task

__all__ = [
    "STIFF_PROBLEMS",
    "StiffProblem",
    "Task",
    "get_task",
    "hires",
    "numpy_field",
    "reference_solution",
    "robertson",
    "task_names",
    "van_der_pol",
]
