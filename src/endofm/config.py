"""Configs: a typed dataclass schema (the defaults) ⊕ a YAML file ⊕ ``key=value`` overrides.

Every command resolves its settings the same way::

    cfg = load_config(PretrainConfig, "configs/pretrain/tiny.yaml", ["optim.epochs=3"])

Unknown keys and wrongly typed values are errors (OmegaConf structured configs), so a typo
in a YAML file or on the command line never passes silently. ``save_run_config`` writes the
resolved config and the git commit into the run folder.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def load_config(schema: type[T], path: str | Path | None = None,
                overrides: Sequence[str] = (), base: Mapping[str, Any] | None = None,
                base_source: str = "base settings") -> T:
    """Merge ``schema`` defaults, the YAML at ``path`` (if any) and ``key=value`` overrides.

    Returns an OmegaConf object that behaves like an instance of ``schema`` (attribute access,
    typed fields). A YAML file may contain a top-level ``defaults: <other.yaml>`` key naming a
    base file (relative to itself) that is merged first. ``base`` (e.g. the settings a model was
    trained with, from ``base_source``) is merged before the file. Errors are
    :class:`ConfigError`s in one line that blame the file (with the line for invalid YAML), the
    command-line override or ``base_source``.
    """
    cfg = OmegaConf.structured(schema)
    if base is not None:
        cfg = merge_checked(cfg, OmegaConf.create(dict(base)), base_source)
    if path is not None:
        cfg = merge_checked(cfg, _load_yaml_with_base(Path(path)), f"config {path}")
    for override in overrides:
        cfg = merge_checked(cfg, parse_override(override),
                            f"command-line override '{override}'")
    return cfg  # type: ignore[return-value]


def explicit_settings(path: str | Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The settings a config file and overrides set, as ``{"dotted.key": value}``."""
    from endofm.utils.run_record import flatten

    given: dict[str, Any] = {}
    if path is not None:
        given |= flatten(OmegaConf.to_container(_load_yaml_with_base(Path(path)), resolve=True))
    for override in overrides:
        given |= flatten(OmegaConf.to_container(parse_override(override), resolve=True))
    return given


def parse_override(override: str) -> DictConfig:
    """One ``key=value`` command-line setting as a config (``value`` parsed as YAML)."""
    key, sep, _ = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"command-line override '{override}': settings take the form key=value "
            f"(e.g. optim.lr=0.01); '{override}' has no '='")
    try:
        return OmegaConf.from_dotlist([override])
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"command-line override '{override}': {_first_line(exc)}") from exc


def merge_checked(cfg: DictConfig, other: Any, source: str) -> DictConfig:
    """``OmegaConf.merge(cfg, other)``; a mismatch is a :class:`ConfigError` naming ``source``
    and the offending key."""
    try:
        return OmegaConf.merge(cfg, other)  # type: ignore[return-value]
    except (OmegaConfBaseException, TypeError, ValueError) as exc:
        key = getattr(exc, "full_key", None)
        where = f" (key {key})" if key else ""
        raise ConfigError(f"invalid setting in {source}{where}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_yaml_with_base(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    data = load_yaml(path)
    base = data.pop("defaults", None)
    if base is None:
        return data
    return OmegaConf.merge(_load_yaml_with_base(path.parent / str(base)), data)


def load_yaml(path: Path) -> DictConfig:
    """A YAML mapping; invalid YAML is one :class:`ConfigError` line naming the file and line."""
    try:
        data = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _first_line(exc)
        raise ConfigError(f"invalid YAML in {path}{line}: {problem}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"invalid YAML in {path}: not a UTF-8 text file") from exc
    if not isinstance(data, DictConfig):
        raise ConfigError(f"{path}: a config file must be a mapping of settings, "
                          f"not a {type(data).__name__}")
    return data


def to_dict(cfg: Any) -> dict:
    """A plain ``dict`` of a resolved config (for checkpoints and JSON)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def git_commit() -> str | None:
    """The current git commit of the source tree, or ``None`` outside a checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def save_run_config(cfg: Any, out_dir: str | Path) -> Path:
    """Write ``config.yaml`` (resolved, with the git commit) into ``out_dir``; training loops use
    :func:`endofm.utils.run_record.start_run`, which also records the inputs."""
    from endofm.utils.run_record import save_record

    return save_record(to_dict(cfg), out_dir)
