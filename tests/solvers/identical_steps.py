"""Every registered solver in odeflow.solve (counting on) and in a plain
diffrax.diffeqsolve (counting off), same controller and dt0: steps and states as
JSON, for tests/solvers/test_protocol.py (run in a fresh process; not collected)."""

import json

import jax

jax.config.update("jax_enable_x64", True)

import diffrax as dfx  # noqa: E402
import numpy as np  # noqa: E402

import odeflow  # noqa: E402
from odeflow.solvers import get_solver, solver_names  # noqa: E402
from test_protocol import FIXED, STEADY, problem  # noqa: E402

out = {}
for name in solver_names():
    field, args, y0, t1 = problem(name)
    solver = get_solver(name)
    controller = dfx.ConstantStepSize() if name in FIXED else solver.default_controller(1e-6, 1e-8, None)
    dt0 = FIXED.get(name, 1e-3)
    kwargs = dict(args=args, saveat=dfx.SaveAt(steps=True), max_steps=20_000)
    ours = odeflow.solve(field, y0, t0=0.0, t1=t1, solver=name, dt0=dt0, controller=controller,
                         **kwargs)
    # pseudo-transient's controller steps by the residuals in its step reports
    plain_solver = solver.reporting() if name in STEADY else solver
    plain = dfx.diffeqsolve(dfx.ODETerm(field), plain_solver, 0.0, t1, dt0, y0,
                            stepsize_controller=controller, **kwargs)
    same = lambda a, b: bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True))
    out[name] = dict(steps=[int(ours.stats.num_steps), int(plain.stats["num_steps"])],
                     identical=same(ours.ts, plain.ts) and same(ours.ys, plain.ys),
                     nfe=int(ours.stats.nfe), rejected=int(ours.stats.num_rejected))
print(json.dumps(out))
