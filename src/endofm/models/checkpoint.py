"""Reading Endo-FM weights in every released layout, safely.

Layouts (docs/release.md#checkpoint-layouts), recognised by telltale keys:

============== ======================================================================
``endofm_dir``  the project's own: a directory with ``model.safetensors`` + ``config.json``
``endofm_file`` the ``model.safetensors`` of such a directory by itself: its header metadata
                carries what ``config.json`` says (architecture, kind, task settings)
``released_pretrain``  a pre-training checkpoint: top-level ``teacher`` (preferred) / ``student``
                with ``backbone.`` / ``head.`` keys, possibly DDP ``module.`` prefixes
``svt_kinetics``  SVT Kinetics-400: ``backbone.`` / ``head.`` keys at the top level
``timesformer``  TimeSformer supervised: ``model_state`` with a ``model.`` prefix
``polypdiag``   a released PolypDiag fine-tune: ``backbone_state_dict`` (+ linear head)
``plain``       a bare backbone state dict (optionally ``module.``-prefixed or under
                ``state_dict``/``model``)
============== ======================================================================

Files are read with ``torch.load(weights_only=True)``; the only non-tensor classes allowed are
those the released files contain (``argparse.Namespace`` and NumPy scalar/array types).

An endofm model folder holds a backbone (``kind`` ``"backbone"``: the tensors are the backbone's)
or a fine-tuned task model (any other ``kind``: the backbone under ``backbone.``, a linear head,
where the model has one, under ``head.``).
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import Tensor

from endofm.models.card import CARD_NAME, model_card
from endofm.models.hub import resolve_weights
from endofm.models.vision_transformer import resize_pos_embed, resize_time_embed
from endofm.utils.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from endofm.utils.text import short_list

WEIGHTS_NAME = "model.safetensors"
# the model folder's description (architecture, kind, task settings); not the run record
# ``config.yaml`` (``endofm.train.run_record.RUN_RECORD_NAME``)
MODEL_CONFIG_NAME = "config.json"
BACKBONE_KIND = "backbone"
# the layouts endofm writes: a model folder, or its weights file by itself
ENDOFM_LAYOUTS = ("endofm_dir", "endofm_file")

try:
    from numpy._core.multiarray import _reconstruct as _numpy_array
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:  # NumPy < 2
    from numpy.core.multiarray import _reconstruct as _numpy_array
    from numpy.core.multiarray import scalar as _numpy_scalar

# Classes the released checkpoints pickle besides tensors and plain containers.
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace,
    _numpy_scalar,
    _numpy_array,  # rebuilds an ndarray; its elements still pass the weights-only checks
    np.dtype,
    np.ndarray,
    np.dtypes.Float64DType,
    np.dtypes.Float32DType,
    np.dtypes.Int64DType,
    np.dtypes.BoolDType,
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the requested model."""


@dataclass
class LoadedCheckpoint:
    """A checkpoint mapped to backbone keys.

    ``state_dict`` holds only backbone tensors (released parameter names); ``head_state_dict``
    the DINO head (pre-training layouts) or the linear head (PolypDiag); ``config`` what could be
    inferred from the tensors; ``ignored`` the top-level entries and key groups left out.
    """

    path: Path
    layout: str
    state_dict: dict[str, Tensor]
    config: dict[str, Any]
    head_state_dict: dict[str, Tensor] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def safe_load(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True`` and the released files' allow-list.

    Anything else pickled in the file (arbitrary classes, code) is refused with an error naming
    the file; so are empty files and files that are not PyTorch checkpoints at all.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory without {WEIGHTS_NAME}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is empty (0 bytes); "
                              "an interrupted copy or download?")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_refusal(exc)}") from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... on damaged files
        raise CheckpointError(f"cannot read checkpoint {path}: {_damage(path, exc)}") from exc


def _refusal(exc: pickle.UnpicklingError) -> str:
    """Why the weights-only unpickler refused a file, without torch's advice to load it
    unsafely."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return (f"it pickles '{found.group(1)}', which is not on the allow-list of plain data "
                "types; refusing to run code from a checkpoint")
    return ("it is not made of tensors and plain data (the safe unpickler stopped at: "
            f"{_last_reason(exc)}); refusing to run code from a checkpoint")


def _last_reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if "weights_only" not in line and "http" not in line
              and "Please file an issue" not in line]
    return (useful or lines or [type(exc).__name__])[-1][:200]


def _damage(path: Path, exc: BaseException) -> str:
    """A readable reason for a file torch could not read."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic != b"PK" and magic[:1] != b"\x80":
        return ("not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle; "
                f"the file starts with {magic!r})")
    reason = str(exc).strip()
    if isinstance(exc, EOFError) or not reason or "central directory" in reason:
        return "the file ends too early (truncated: an interrupted copy or download?)"
    return f"damaged or truncated file ({type(exc).__name__}: {reason.splitlines()[0][:200]})"


def _strip(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _strip_module(sd: Mapping[str, Any]) -> dict[str, Any]:
    if sd and all(k.startswith("module.") for k in sd):
        return _strip(sd, "module.")
    return dict(sd)


def _tensors(sd: Mapping[str, Any]) -> dict[str, Tensor]:
    return {k: v for k, v in sd.items() if isinstance(v, Tensor)}


def _split_backbone_head(sd: Mapping[str, Any]) -> tuple[dict, dict]:
    sd = _strip_module(sd)
    return _tensors(_strip(sd, "backbone.")), _tensors(_strip(sd, "head."))


def _map_layout(obj: Any, path: Path) -> tuple[str, dict, dict, list[str], dict]:
    """Return (layout, backbone sd, head sd, ignored entries, extra) for a loaded object."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict-like checkpoint, got {type(obj).__name__}")
    keys = list(obj.keys())
    if "teacher" in obj or "student" in obj:
        which = "teacher" if "teacher" in obj else "student"
        backbone, head = _split_backbone_head(obj[which])
        ignored = [k for k in keys if k != which]
        extra = {"epoch": obj.get("epoch"), "source": which}
        if isinstance(obj.get("dino_loss"), Mapping) and "center" in obj["dino_loss"]:
            extra["center"] = obj["dino_loss"]["center"]
        return "released_pretrain", backbone, head, ignored, extra
    if "backbone_state_dict" in obj:
        backbone = _tensors(_strip_module(obj["backbone_state_dict"]))
        head = _tensors(_strip_module(obj.get("state_dict", {})))
        ignored = [k for k in keys if k not in ("backbone_state_dict", "state_dict")]
        return "polypdiag", backbone, head, ignored, {"epoch": obj.get("epoch")}
    if "model_state" in obj:
        sd = _strip_module(obj["model_state"])
        sd = _strip(sd, "model.") if any(k.startswith("model.") for k in sd) else sd
        head = {k: v for k, v in sd.items() if k.startswith("head.")}
        backbone = {k: v for k, v in _tensors(sd).items() if not k.startswith("head.")}
        ignored = [k for k in keys if k != "model_state"] + sorted(head)
        return "timesformer", backbone, _tensors(_strip(head, "head.")), ignored, {}
    for container in ("state_dict", "model"):
        if container in obj and isinstance(obj[container], Mapping):
            layout, backbone, head, ignored, extra = _map_layout(obj[container], path)
            return layout, backbone, head, ignored + [k for k in keys if k != container], extra
    sd = _strip_module(obj)
    if any(k.startswith("backbone.") for k in sd):
        backbone, head = _split_backbone_head(sd)
        ignored = [k for k in sd if not k.startswith(("backbone.", "head."))]
        return "svt_kinetics", backbone, head, ignored, {}
    if "pos_embed" in sd and "patch_embed.proj.weight" in sd:
        return "plain", _tensors(sd), {}, [k for k in sd if not isinstance(sd[k], Tensor)], {}
    raise CheckpointError(
        f"{path}: unrecognised checkpoint layout (top-level keys: {keys[:12]}); expected an "
        "Endo-FM/SVT pre-training checkpoint, a TimeSformer checkpoint, a PolypDiag fine-tune, "
        "a backbone state dict or an endofm model directory")


def infer_config(sd: Mapping[str, Tensor], path: Path | str = "") -> dict[str, Any]:
    """Backbone settings read off tensor shapes.

    ``num_heads`` cannot be read from shapes and is left out: callers pass it, or
    :func:`endofm.models.registry.resolve_num_heads` takes a named config's value for that
    width (and refuses to guess for other widths).
    """
    for key in ("pos_embed", "patch_embed.proj.weight", "cls_token"):
        if key not in sd:
            raise CheckpointError(f"{path}: backbone weights lack '{key}'")
    embed_dim, in_chans, patch, _ = sd["patch_embed.proj.weight"].shape
    n_pos = sd["pos_embed"].shape[1] - 1
    grid = math.isqrt(n_pos)
    if grid * grid != n_pos:
        raise CheckpointError(f"{path}: pos_embed has {n_pos} patch entries, not a square grid")
    depth = 1 + max((int(k.split(".")[1]) for k in sd if k.startswith("blocks.")), default=-1)
    if "time_embed" in sd:
        num_frames = sd["time_embed"].shape[1]
        attention = ("divided_space_time" if "blocks.0.temporal_fc.weight" in sd
                     else "joint_space_time")
    else:
        num_frames, attention = 8, "space_only"
    return {
        "img_size": grid * patch, "patch_size": patch, "in_chans": in_chans,
        "embed_dim": embed_dim, "depth": depth, "num_frames": num_frames,
        "attention_type": attention,
    }


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Read ``path`` (file or endofm directory, or an ``hf-hub:`` name resolved through the hub's
    cache by :func:`~endofm.models.hub.resolve_weights`) and map it to backbone keys."""
    path = resolve_weights(path)
    if path.is_dir():
        return _load_dir(path)
    if weights_metadata(path) is not None:
        return _load_dir(path, "endofm_file")
    obj = _plain_safetensors(path) if path.suffix == ".safetensors" else safe_load(path)
    layout, backbone, head, ignored, extra = _map_layout(obj, path)
    # a classification head inside the backbone (TimeSformer's ``head``) is not backbone
    ignored += [f"backbone {k}" for k in backbone if k.startswith("head.")]
    backbone = {k: v for k, v in backbone.items() if not k.startswith("head.")}
    if not backbone:
        raise CheckpointError(f"{path}: layout '{layout}' but no backbone weights found")
    config = infer_config(backbone, path)
    heads = _recorded_num_heads(obj)
    if heads is not None:
        config["num_heads"] = heads
    return LoadedCheckpoint(path, layout, backbone, config, head, ignored, extra)


def _plain_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A ``.safetensors`` file without endofm's metadata: a plain state dict (``torch.load``
    reads safetensors only in recent PyTorch releases)."""
    try:
        return load_file(str(path))
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc


def _recorded_num_heads(obj: Any) -> int | None:
    """The head count a checkpoint written by endofm's training loops records (in ``arch``, or
    in its ``config``'s ``model`` section); released files record none."""
    if not isinstance(obj, Mapping):
        return None
    for section in (obj.get("arch"), _get(_get(obj, "config"), "model")):
        heads = _get(section, "num_heads")
        if isinstance(heads, int) and heads > 0:
            return heads
    return None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else None


def _load_dir(path: Path, layout: str = "endofm_dir") -> LoadedCheckpoint:
    """A model folder written by :func:`save_state_dir`, or (``endofm_file``) its
    self-describing weights file."""
    meta, tensors = read_state_dir(path)
    if not isinstance(meta.get("backbone"), dict):
        raise CheckpointError(f"{_meta_source(path)}: no 'backbone' config object; not written "
                              "by endofm?")
    if meta.get("kind", BACKBONE_KIND) == BACKBONE_KIND:
        backbone, head, ignored = tensors, {}, []
    else:  # a task model: its backbone, its linear head (if any) and its other parts
        backbone, head = _strip(tensors, "backbone."), _strip(tensors, "head.")
        others = {k.split(".")[0] for k in tensors if not k.startswith(("backbone.", "head."))}
        ignored = [f"{meta.get('kind')} {part}.*" for part in sorted(others)]
    return LoadedCheckpoint(path, layout, backbone, dict(meta["backbone"]), head, ignored,
                            {"meta": meta})


def adapt_state_dict(sd: dict[str, Tensor], model: torch.nn.Module,
                     source: str | Path = "") -> dict[str, Tensor]:
    """Fit a backbone state dict to ``model``.

    Positional tables for another image size or frame count are resized (with a warning).
    ``mask_token`` (a pre-training-only parameter of masked-patch training) is dropped when the
    model has none and kept at its initial value when the checkpoint has none (with a
    warning). Any other missing, unexpected or mis-shaped key is an error naming the keys and
    shapes.
    """
    target = model.state_dict()
    sd = dict(sd)
    if ("mask_token" in sd) != ("mask_token" in target):
        if "mask_token" in sd:
            del sd["mask_token"]
        else:
            sd["mask_token"] = target["mask_token"]
        warnings.warn(f"{source}: mask_token only in the "
                      f"{'checkpoint' if 'mask_token' not in target else 'model'}; "
                      "it is used only in masked-patch pre-training", stacklevel=2)
    for key in ("pos_embed", "time_embed"):
        if key not in sd or key not in target or sd[key].shape == target[key].shape:
            continue
        if sd[key].shape[-1] != target[key].shape[-1]:
            continue  # a width mismatch is reported below with every other mismatch
        old = tuple(sd[key].shape)
        if key == "pos_embed":
            g = model.img_size // model.patch_size
            sd[key] = resize_pos_embed(sd[key], (g, g))
        else:
            sd[key] = resize_time_embed(sd[key], target[key].shape[1])
        warnings.warn(f"{source}: resized {key} from {old} to {tuple(target[key].shape)} "
                      "to fit the requested model", stacklevel=2)
    problems = key_problems(sd, target)
    if problems:
        raise CheckpointError(f"{source}: checkpoint does not fit the model: {problems}")
    return sd


def key_problems(sd: Mapping[str, Tensor], target: Mapping[str, Tensor]) -> str:
    """A short description of how ``sd`` differs from ``target`` (missing, unexpected and
    mis-shaped keys, at most :data:`~endofm.utils.text.MAX_LISTED` of each); empty when it
    fits."""
    missing = sorted(set(target) - set(sd))
    unexpected = sorted(set(sd) - set(target))
    mismatched = [f"{k} {tuple(sd[k].shape)} vs {tuple(target[k].shape)}"
                  for k in sorted(set(sd) & set(target)) if sd[k].shape != target[k].shape]
    problems = []
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es) (checkpoint vs model): "
                        + short_list(mismatched, sep="; "))
    if missing:
        problems.append(f"{len(missing)} missing key(s): {short_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {short_list(unexpected)}")
    return " | ".join(problems)


def load_state_checked(module: torch.nn.Module, sd: Mapping[str, Tensor],
                       source: str | Path, hint: str = "") -> None:
    """``module.load_state_dict(sd)`` (strict) with a short :class:`CheckpointError` naming
    ``source`` (followed by ``hint``) instead of torch's key-by-key dump."""
    problems = key_problems(sd, module.state_dict())
    if problems:
        raise CheckpointError(f"{source} holds a different model{hint}: {problems}")
    module.load_state_dict(sd)


# where a run folder keeps its model: `endofm finetune` in best/, `endofm pretrain` in backbone/
RUN_MODEL_FOLDERS = ("best", "backbone")


def run_folder_hint(path: Path, name: str) -> str:
    """For an error about ``path`` lacking ``name``: ``"; it is a run folder, whose model is
    PATH/best"`` when ``path`` is a run folder holding a model with that file, else ``""``."""
    inner = [path / sub for sub in RUN_MODEL_FOLDERS if (path / sub / name).is_file()]
    return f"; it is a run folder, whose model is {inner[0]}" if inner else ""


def save_state_dir(tensors: Mapping[str, Tensor], meta: Mapping[str, Any],
                   out_dir: str | Path, card: str | None = None) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``out_dir`` (each atomically), and the
    model card ``README.md`` (``card``, else :func:`~endofm.models.card.model_card` of
    ``meta``); the weights file's header metadata carries ``meta`` too
    (:func:`header_metadata`), so the file alone describes its model."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    contiguous = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(safetensors_bytes(contiguous, metadata=header_metadata(meta)),
                       out_dir / WEIGHTS_NAME)
    atomic_write_json(dict(meta), out_dir / MODEL_CONFIG_NAME)
    atomic_write_text(card if card is not None else model_card(meta), out_dir / CARD_NAME)
    return out_dir


def header_metadata(meta: Mapping[str, Any]) -> dict[str, str]:
    """``config.json``'s entries as safetensors header metadata (string values): each
    top-level key with its value JSON-encoded (``"kind": '"classifier"'``, ``"backbone":
    '{"embed_dim": 192, "num_heads": 3, ...}'``)."""
    return {key: json.dumps(value) for key, value in meta.items()}


def weights_metadata(path: str | Path) -> dict[str, Any] | None:
    """What a weights file endofm wrote says about its model (the ``config.json`` of its
    folder, from the safetensors header metadata); ``None`` for any other file (not
    safetensors, or without endofm's metadata)."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (OSError, SafetensorError) as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if header.get("format") != json.dumps("endofm"):
        return None
    try:
        return {key: json.loads(value) for key, value in header.items()}
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable endofm header metadata ({exc})") from exc


def _meta_source(path: Path) -> Path:
    """Where a model's description is read from: the folder's ``config.json``, or the weights
    file's header."""
    return path if path.is_file() else path / MODEL_CONFIG_NAME


def read_state_meta(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a directory written by :func:`save_state_dir`, or the same read
    from the header of its ``model.safetensors`` given alone; with ``kind``, its ``"kind"``
    must match. A missing file is a ``FileNotFoundError``, anything else unreadable a
    :class:`CheckpointError`, each naming the path."""
    path = Path(path)
    meta = _file_meta(path) if path.is_file() else _folder_meta(path, kind)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{_meta_source(path)}: kind {meta.get('kind')!r} is not a "
                              f"{kind!r} checkpoint")
    return meta


def _file_meta(path: Path) -> dict[str, Any]:
    meta = weights_metadata(path)
    if meta is None:
        raise CheckpointError(f"{path}: not a weights file that describes its model (no endofm "
                              f"header metadata: written before endofm stored it?); give its "
                              f"folder, with {MODEL_CONFIG_NAME}")
    return meta


def _folder_meta(path: Path, kind: str | None) -> dict[str, Any]:
    for name in (WEIGHTS_NAME, MODEL_CONFIG_NAME):
        if not (path / name).is_file():
            what = f"a {kind} checkpoint" if kind else "an endofm model"
            raise FileNotFoundError(f"{path}: not {what} directory ({name} missing)"
                                    f"{run_folder_hint(path, name)}")
    try:
        meta = json.loads((path / MODEL_CONFIG_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path / MODEL_CONFIG_NAME}: {exc}") from exc
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path / MODEL_CONFIG_NAME}: not a JSON object")
    return meta


def weights_file(path: str | Path) -> Path:
    """The weights of a model folder (its ``model.safetensors``), or ``path`` itself when it is
    the file."""
    path = Path(path)
    return path if path.is_file() else path / WEIGHTS_NAME


def read_state_dir(path: str | Path, kind: str | None = None
                   ) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(config.json, tensors)`` of a directory written by :func:`save_state_dir`, or of its
    self-describing ``model.safetensors`` alone (checked as :func:`read_state_meta`)."""
    meta = read_state_meta(path, kind)
    weights = weights_file(path)
    try:
        return meta, load_file(str(weights))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {weights}: {exc}") from exc
