"""Does a diagonal (Jacobi) preconditioner help CG on the shifted Gauss-Newton systems
of implicit gradient-flow steps? (why odeflow has none).

    python benchmarks/jacobi_preconditioner.py     # about a minute, 2 cores

On the 2,410-parameter digits MLP, at the initial parameters and after 100 Adam
steps, CG solves (λI + G) x = -∇L to relative residual 1e-2 for several damping
values λ = 1/h, preconditioned by nothing, by the exact diagonal of G (from 2,410
products), or by Hutchinson estimates of it (1, 4, 16 random sign vectors). Counts
CG iterations (products), which are deterministic; no times.

Writes benchmarks/results/jacobi_preconditioner.{json,md}.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from odeflow.comparison._report import machine_info  # noqa: E402
from odeflow.solvers._krylov import cg  # noqa: E402
from odeflow.problems import get_task  # noqa: E402
from odeflow.flow import gauss_newton_products  # noqa: E402

OUT = Path(__file__).parent / "results"
DAMPINGS = (1e-1, 1e-2, 1e-3, 1e-4)
PROBES = (1, 4, 16)


def systems(task, adam_steps):
    params = task.init(jax.random.key(0))
    opt = optax.adam(0.1)
    state = opt.init(params)
    grad = jax.jit(jax.grad(task.loss))
    for _ in range(adam_steps):
        updates, state = opt.update(grad(params), state)
        params = optax.apply_updates(params, updates)
    flat, unravel = ravel_pytree(params)
    gradient, ggn_vp = gauss_newton_products(task.composite_loss, params)
    product = jax.jit(lambda v: ravel_pytree(ggn_vp(unravel(v)))[0])
    return float(task.loss(params)), ravel_pytree(gradient)[0], product, flat.size


def main() -> None:
    task = get_task("digits", hidden=32)
    rows = []
    for adam_steps in (0, 100):
        loss, gradient, product, n = systems(task, adam_steps)
        exact = jax.lax.map(product, jnp.eye(n), batch_size=256).diagonal()
        diagonals = {"exact": exact}
        for k in PROBES:
            z = jax.random.rademacher(jax.random.key(k), (k, n), dtype=gradient.dtype)
            diagonals[f"hutchinson-{k}"] = jnp.mean(z * jax.vmap(product)(z), axis=0)
        for damping in DAMPINGS:
            matvec = lambda v: damping * v + product(v)
            row = {"adam_steps": adam_steps, "loss": loss, "damping": damping}
            row["none"] = int(cg(matvec, -gradient, rtol=1e-2, max_iters=1000)[1])
            for name, d in diagonals.items():
                scale = 1.0 / (damping + jnp.maximum(d, 0.0))
                row[name] = int(cg(matvec, -gradient, rtol=1e-2, max_iters=1000,
                                   precondition=lambda r: scale * r)[1])
            rows.append(row)
            print(row, flush=True)
    columns = ["none", "exact", *[f"hutchinson-{k}" for k in PROBES]]
    lines = ["CG iterations to relative residual 1e-2 on (λI + G) x = -∇L, digits MLP "
             "2,410 parameters, float64; G = Gauss-Newton matrix; preconditioner "
             "diag(λ + max(d, 0)) with d the exact diagonal of G or a Hutchinson "
             "estimate from k sign vectors.", "",
             "| Adam steps | loss | λ | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for r in rows:
        lines.append(f"| {r['adam_steps']} | {r['loss']:.3g} | {r['damping']:g} | "
                     + " | ".join(str(r[c]) for c in columns) + " |")
    text = "\n".join(lines) + "\n"
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "jacobi_preconditioner.json").write_text(json.dumps(
        {"machine": machine_info(), "command": command, "rows": rows}, indent=1))
    (OUT / "jacobi_preconditioner.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
