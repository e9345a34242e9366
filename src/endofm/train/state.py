"""Save and resume of a training state, and moving batches to the device.

A training state is a plain dict (model weights, ``OptimizerStepper.state_dict()``, counters,
the resolved config) to which :func:`save_training_state` adds the RNG states; it is written
atomically and read back with the project's ``weights_only`` allow-list.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from endofm.models.checkpoint import CheckpointError, load_state_checked, safe_load
from endofm.utils.io import atomic_torch_save
from endofm.utils.seed import get_rng_state, set_rng_state

logger = logging.getLogger(__name__)

# What a refused resume suggests (both training loops).
RESUME_HINT = " (choose another --output, or add --restart to start this run over)"
STEP_CHECKPOINT = re.compile(r"checkpoint-(\d+)\.pth$")


def save_training_state(state: dict[str, Any], path: Path) -> Path:
    """Write ``state`` plus the current RNG states (key ``rng``) atomically to ``path``."""
    return atomic_torch_save(state | {"rng": get_rng_state()}, path)


def load_training_state(path: Path, modules: Mapping[str, nn.Module], hint: str = "",
                        state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state` (or take ``state``, read from
    ``path`` already): load ``state[key]`` into each of ``modules`` (strict; a mismatch is a
    :class:`CheckpointError` naming ``path``, followed by ``hint``), then restore the RNG
    states. Returns the state for the rest (optimiser, counters)."""
    state = safe_load(path) if state is None else state
    for key, module in modules.items():
        if key not in state:
            raise CheckpointError(f"{path} is not a training state of this run (no {key!r})")
        load_state_checked(module, state[key], path, hint)
    if "rng" not in state:
        raise CheckpointError(f"{path} is not a training state of this run (no RNG state)")
    set_rng_state(state["rng"])
    return state


def step_checkpoints(output: Path) -> list[Path]:
    """``checkpoint-<step>.pth`` files in ``output``, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(output).glob("checkpoint-*.pth")
             if (m := STEP_CHECKPOINT.search(p.name))]
    return [p for _, p in sorted(found)]


def newest_readable(paths: list[Path]) -> tuple[Path, dict[str, Any]]:
    """The newest of ``paths`` (oldest first) that reads, and its content. Each newer one that
    does not read (damaged on disk: states are written atomically) gets a warning naming it and
    why; when none reads, the newest one's error is raised."""
    errors: list[CheckpointError] = []
    for path in reversed(paths):
        try:
            state = safe_load(path)
        except CheckpointError as error:
            errors.append(error)
            continue
        for error in errors:
            logger.warning("%s; resuming from the older %s instead", error, path.name)
        return path, state
    raise errors[0]


def prune_checkpoints(output: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` (at least one) step checkpoints."""
    for old in step_checkpoints(output)[: -max(1, keep_last)]:
        old.unlink()


def to_device(batch: Any, device: Any) -> Any:
    """Move every tensor in a (nested) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
