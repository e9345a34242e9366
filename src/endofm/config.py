"""Configs: a typed dataclass schema (the defaults) ⊕ a YAML file ⊕ ``key=value`` overrides.

Every command resolves its settings the same way::

    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"), ["optim.epochs=3"])

Recipes ship with the package (``endofm/configs/<group>/<name>.yaml``, one group per command:
``pretrain``, ``classification``, ``segmentation``, ``detection``); :func:`resolve_config`
accepts a recipe name (``tiny``) or a path to any YAML file.

Unknown keys and wrongly typed values are errors (OmegaConf structured configs), so a typo
in a YAML file or on the command line never passes silently. ``save_run_config`` writes the
resolved config and the git commit into the run folder.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from endofm.utils.io import atomic_write_text

T = TypeVar("T")


RECIPES = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def recipe_groups() -> list[str]:
    """The recipe groups shipped with the package (one per command)."""
    return sorted(p.name for p in RECIPES.iterdir() if p.is_dir())


def recipe_names(group: str) -> list[str]:
    """The recipe names of ``group`` (file names without ``.yaml``)."""
    return sorted(p.stem for p in (RECIPES / group).glob("*.yaml"))


def recipe_path(group: str, name: str) -> Path:
    """The packaged YAML of recipe ``name`` in ``group``."""
    path = RECIPES / group / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(recipe_names(group)) if (RECIPES / group).is_dir() else "none"
        raise ConfigError(f"no {group} recipe named {name!r} (recipes: {known})")
    return path


def resolve_config(group: str, config: str | Path | None) -> Path | None:
    """``config`` as a file: an existing path as given, else the packaged recipe of that name
    in ``group`` (``"tiny"`` → ``endofm/configs/<group>/tiny.yaml``)."""
    if config is None:
        return None
    path = Path(config)
    if path.is_file():
        return path
    if path.suffix or len(path.parts) > 1:
        raise ConfigError(f"config file not found: {path}")
    return recipe_path(group, str(config))


def load_config(schema: type[T], path: str | Path | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Merge ``schema`` defaults, the YAML at ``path`` (if any) and ``key=value`` overrides.

    Returns an instance of ``schema`` (``OmegaConf.to_object``): typed dataclasses all the way
    down, choices as ``StrEnum`` members, each section's ``__post_init__`` checks run. Every
    check happens here, before any model or data is built. A YAML file may contain a top-level
    ``defaults: <other.yaml>`` key naming a base file (relative to itself) that is merged first.
    """
    cfg = OmegaConf.structured(schema)
    try:
        if path is not None:
            cfg = OmegaConf.merge(cfg, _load_yaml_with_base(Path(path)))
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(cfg)  # type: ignore[return-value]
    except (OmegaConfBaseException, ValueError) as exc:
        where = f" (config {path})" if path is not None else ""
        raise ConfigError(f"invalid setting{where}: {exc}") from exc


def from_dict(schema: type[T], values: Mapping[str, Any]) -> T:
    """An instance of ``schema`` from a plain dict (e.g. a saved ``config.json`` section),
    checked like :func:`load_config`."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), dict(values)))
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"invalid {schema.__name__}: {exc}") from exc


def _load_yaml_with_base(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = OmegaConf.load(path)
    base = data.pop("defaults", None)
    if base is None:
        return data
    return OmegaConf.merge(_load_yaml_with_base(path.parent / str(base)), data)


def to_dict(cfg: Any) -> dict:
    """A plain ``dict`` of a config dataclass (choices as strings; for checkpoints and JSON)."""
    if not dataclasses.is_dataclass(cfg):
        raise TypeError(f"to_dict expects a config dataclass, got {type(cfg).__name__}")
    return OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)  # type: ignore


def git_commit() -> str | None:
    """The current git commit of the source tree, or ``None`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def save_run_config(cfg: Any, out_dir: str | Path) -> Path:
    """Write ``out_dir/config.yaml``: every setting of ``cfg``, then a last comment line
    ``# git commit: <sha>`` (``unknown`` outside a git checkout). Being a comment, the commit
    keeps the file a valid ``--config`` for the same command."""
    text = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    text += f"# git commit: {git_commit() or 'unknown'}\n"
    return atomic_write_text(text, Path(out_dir) / "config.yaml")
