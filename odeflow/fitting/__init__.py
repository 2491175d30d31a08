"""Minibatch training of neural-ODE models with optax (`fit`, also `odeflow.fit`): per-step loss,
metrics and forward/backward NFE, tolerance schedules, kinetic and Jacobian
regularisation through the loss (`classification_loss`), checkpoints that resume
to the same result, and plots (`plot_history`); `sweep` trains one run per seed
at once, split over devices.

(`odeflow.flow` is the other programme: training by solving the gradient flow.)
"""

from ._checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from ._history import new_history, plot_history
from ._loop import FitResult, fit, map_blocks
from ._losses import classification_loss, evaluate_classifier, sequence_loss
from ._sweep import SweepResult, sweep

__all__ = [
    "SweepResult",
    "FitResult",
    "classification_loss",
    "evaluate_classifier",
    "fit",
    "has_checkpoint",
    "load_checkpoint",
    "map_blocks",
    "new_history",
    "plot_history",
    "save_checkpoint",
    "sequence_loss",
    "sweep",
]
