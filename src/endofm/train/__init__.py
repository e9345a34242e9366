"""The training core shared by pre-training (``endofm.ssl``) and fine-tuning (``endofm.tasks``).

One of each: parameter groups (``model.no_weight_decay()`` plus a rule), precomputed per-step
schedules, optimiser stepping (grad scaler, accumulation, clipping), save and resume of the
training state, and the end-of-run logs and plots. Depends only on ``endofm.utils``.
"""

from endofm.train.logs import finish_logs
from endofm.train.optim import (
    OptimizerStepper,
    build_optimizer,
    clip_gradients,
    no_weight_decay_names,
    param_groups,
    skips_weight_decay,
)
from endofm.train.schedules import CosineScheduler
from endofm.train.state import (
    RESUME_HINT,
    load_training_state,
    newest_readable,
    prune_checkpoints,
    save_training_state,
    step_checkpoints,
    to_device,
)

__all__ = [
    "RESUME_HINT", "CosineScheduler", "OptimizerStepper", "build_optimizer", "clip_gradients",
    "finish_logs", "load_training_state", "newest_readable", "no_weight_decay_names",
    "param_groups", "prune_checkpoints", "save_training_state", "skips_weight_decay",
    "step_checkpoints", "to_device",
]
