"""The per-step history of a training run (plain lists, JSON-ready) and its plots."""

from __future__ import annotations

import os

import numpy as np

from .._io import atomic_write


def new_history() -> dict:
    """`step`, `loss`, `nfe_forward` (the forward solve's NFE as the loss reports
    it, -1 if it does not), `nfe_backward` (vector-field vector-Jacobian or
    Jacobian-vector products counted in the backward pass, -1 if not counted),
    `time` (seconds since the start, across resumes), `metrics` (per step, the
    loss function's other metrics) and `eval` (`{"step": s, ...}` records)."""
    return {"step": [], "loss": [], "nfe_forward": [], "nfe_backward": [], "time": [],
            "metrics": [], "eval": []}


def plot_history(history: dict, path: str | os.PathLike, *, title: str = "") -> None:
    """Save a PNG of the loss and the forward and backward NFE against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(history["step"])
    fig, (ax_loss, ax_nfe) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(steps, history["loss"], lw=1, label="train (minibatch)")
    for name in sorted({k for e in history["eval"] for k in e} - {"step"}):
        if "loss" in name:
            ax_loss.plot([e["step"] for e in history["eval"]], [e[name] for e in history["eval"]],
                         "o-", label=name)
    ax_loss.set(xlabel="step", ylabel="loss", yscale="log")
    ax_loss.legend()
    for key in ("nfe_forward", "nfe_backward"):
        values = np.asarray(history[key], dtype=float)
        if values.size and np.all(values >= 0):
            ax_nfe.plot(steps, values, lw=1, label=key.replace("_", " "))
    ax_nfe.set(xlabel="step", ylabel="NFE per step")
    ax_nfe.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, dpi=120, format="png"))
    plt.close(fig)
