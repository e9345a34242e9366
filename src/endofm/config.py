"""Configs: a typed dataclass schema (the defaults) ⊕ a YAML file ⊕ ``key=value`` overrides.

Every command resolves its settings the same way::

    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"), ["train.epochs=3"])

Recipes ship with the package (``endofm/configs/<group>/<name>.yaml``, one group per command:
``pretrain``, ``classification``, ``segmentation``, ``detection``); :func:`resolve_config`
accepts a recipe name (``tiny``) or a path to any YAML file.

Unknown keys and wrongly typed values are errors (OmegaConf structured configs), so a typo
in a YAML file or on the command line never passes silently. ``save_run_config`` writes the
resolved config and the git commit into the run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from endofm.utils.io import atomic_write_text

T = TypeVar("T")


RECIPES = Path(__file__).parent / "configs"
GIT_LINE = "# git commit:"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


# Settings renamed since earlier versions: old dotted key → new one (docs/configuration.md).
# A file or override that uses an old key is refused naming the new one; the settings endofm
# recorded itself (a run's config.yaml, a model folder's config.json) are read with the new.
RENAMED_KEYS: dict[str, str] = {
    **{f"run.{key}": f"train.{key}"
       for key in ("seed", "device", "precision", "progress", "log_every", "save_every_steps",
                   "save_every_epochs", "keep_last")},
    "optim.epochs": "train.epochs",
    "optim.batch_size": "train.batch_size",
    "data.num_workers": "train.num_workers",
    "views.sampling_rate": "views.frame_step",
    "data.sampling_rate": "data.frame_step",
    "monitor.sampling_rate": "monitor.frame_step",
    "data.frame_stride": "data.frame_step",
    "data.normalise": "data.normalization",
}


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
                overrides: Sequence[str] = (), base: Mapping[str, Any] | None = None,
                base_source: str = "base settings") -> T:
    """Merge ``schema`` defaults, the YAML at ``path`` (if any) and ``key=value`` overrides.

    Returns an instance of ``schema`` (``OmegaConf.to_object``): typed dataclasses all the way
    down, choices as ``StrEnum`` members, each section's ``__post_init__`` checks run. Every
    check happens here, before any model or data is built. A YAML file may contain a top-level
    ``defaults: <other.yaml>`` key naming a base file (relative to itself) that is merged first.
    ``base`` (e.g. the settings a model was trained with, from ``base_source``) is merged before
    the file. Errors are :class:`ConfigError`s in one line that blame the file (with the line
    for invalid YAML), the command-line override or ``base_source``.
    """
    cfg = OmegaConf.structured(schema)
    if base is not None:
        cfg = merge_checked(cfg, OmegaConf.create(renamed_to_current(base, cfg)), base_source)
    if path is not None:
        settings, source = _load_yaml_with_base(Path(path)), f"config {path}"
        refuse_renamed(cfg, settings, source)
        cfg = merge_checked(cfg, settings, source)
    for override in overrides:
        settings, source = parse_override(override), f"command-line override '{override}'"
        refuse_renamed(cfg, settings, source)
        cfg = merge_checked(cfg, settings, source)
    return to_typed(cfg, f"config {path}" if path is not None else schema.__name__, overrides)


def to_typed(cfg: DictConfig, source: str, overrides: Sequence[str] = ()) -> Any:
    """``OmegaConf.to_object(cfg)``; a failed check is one :class:`ConfigError` naming the last
    of ``overrides`` whose key the check's message names, else ``source``."""
    try:
        return OmegaConf.to_object(cfg)
    except (OmegaConfBaseException, TypeError, ValueError) as exc:
        message = _first_line(exc)
        named = [o for o in overrides
                 if re.search(rf"(?<![\w.]){re.escape(o.split('=', 1)[0].strip())}(?!\w)",
                              message)]
        blamed = f"command-line override '{named[-1]}'" if named else source
        raise ConfigError(f"invalid setting in {blamed}: {message}") from exc


def from_dict(schema: type[T], values: Mapping[str, Any]) -> T:
    """An instance of ``schema`` from a plain dict (e.g. a saved ``config.json`` section),
    checked like :func:`load_config`."""
    cfg = OmegaConf.structured(schema)
    renamed = {old.rsplit(".", 1)[1]: new.rsplit(".", 1)[1] for old, new in RENAMED_KEYS.items()
               if old.rsplit(".", 1)[0] == new.rsplit(".", 1)[0]}
    current = {renamed.get(k, k) if k not in cfg else k: v for k, v in values.items()}
    return to_typed(merge_checked(cfg, current, schema.__name__), schema.__name__)


def refuse_renamed(cfg: DictConfig, settings: DictConfig, source: str) -> None:
    """A :class:`ConfigError` naming the new key when ``settings`` set a key of
    :data:`RENAMED_KEYS` that ``cfg``'s schema does not have."""
    for key in flatten(OmegaConf.to_container(settings, resolve=False)):  # type: ignore[arg-type]
        new = RENAMED_KEYS.get(key)
        if new is not None and not _has_key(cfg, key):
            raise ConfigError(f"invalid setting in {source}: {key} was renamed {new}")


def _has_key(cfg: DictConfig, dotted: str) -> bool:
    """Whether the schema ``cfg`` has the setting ``dotted`` (``section.key``)."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return False
        node = node.get(part)
    return True


def renamed_to_current(settings: Mapping[str, Any], schema: DictConfig | None = None
                       ) -> dict[str, Any]:
    """Settings endofm recorded (a nested dict) with the keys of :data:`RENAMED_KEYS` moved to
    their new names (a new key already set wins; a section left empty is dropped), except the
    keys ``schema`` (when given) still has."""
    current = copy.deepcopy(dict(settings))
    for old, new in RENAMED_KEYS.items():
        if schema is not None and _has_key(schema, old):
            continue
        (old_section, old_key), (new_section, new_key) = old.split("."), new.split(".")
        section = current.get(old_section)
        if not isinstance(section, dict) or old_key not in section:
            continue
        value = section.pop(old_key)
        if not section:
            del current[old_section]
        target = current.setdefault(new_section, {})
        if isinstance(target, dict):
            target.setdefault(new_key, value)
    return current


def explicit_settings(path: str | Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """The settings a config file and overrides set, as ``{"dotted.key": value}``."""
    given: dict[str, Any] = {}
    if path is not None:
        given |= flatten(OmegaConf.to_container(_load_yaml_with_base(Path(path)), resolve=True))
    for override in overrides:
        given |= flatten(OmegaConf.to_container(parse_override(override), resolve=True))
    return given


def parse_override(override: str) -> DictConfig:
    """One ``key=value`` command-line setting as a config (``value`` parsed as YAML; a value
    YAML cannot read, such as ``*/left_frames`` (``*`` starts a YAML alias), is the text as
    typed)."""
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"command-line override '{override}': settings take the form key=value "
            f"(e.g. optim.lr=0.01); '{override}' has no '='")
    try:
        try:
            return OmegaConf.from_dotlist([override])
        except yaml.YAMLError:
            cfg = OmegaConf.create()
            OmegaConf.update(cfg, key.strip(), value, force_add=True)
            return cfg
    except (OmegaConfBaseException, ValueError) as exc:
        raise ConfigError(f"command-line override '{override}': {_first_line(exc)}") from exc


def merge_checked(cfg: DictConfig, other: Any, source: str) -> DictConfig:
    """``OmegaConf.merge(cfg, other)``; a mismatch is a :class:`ConfigError` naming ``source``
    and the offending key."""
    try:
        return OmegaConf.merge(cfg, other)  # type: ignore[return-value]
    except (OmegaConfBaseException, TypeError, ValueError) as exc:
        try:
            section = _value_for_a_section(cfg, other)
        except OmegaConfBaseException:  # an interpolation that does not resolve
            section = None
        if section is not None:
            raise ConfigError(f"invalid setting in {source}: {section[0]} is a section of "
                              f"settings (key: value lines under it), got {section[1]!r}"
                              ) from exc
        key = getattr(exc, "full_key", None)
        where = f" (key {key})" if key else ""
        raise ConfigError(f"invalid setting in {source}{where}: {_first_line(exc)}") from exc


def _value_for_a_section(cfg: Any, other: Any, prefix: str = "") -> tuple[str, Any] | None:
    """The first ``(dotted key, value)`` where ``other`` gives a plain value for a section of
    ``cfg`` (``optim: 3``), else ``None``."""
    if not isinstance(other, Mapping | DictConfig) or not isinstance(cfg, DictConfig):
        return None
    for key, value in other.items():
        if key not in cfg or OmegaConf.is_missing(cfg, key):
            continue
        name, target = f"{prefix}{key}", cfg.get(key)
        if (isinstance(target, DictConfig) and value is not None
                and not isinstance(value, Mapping | DictConfig)):
            return name, value
        found = _value_for_a_section(target, value, f"{name}.")
        if found is not None:
            return found
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_yaml_with_base(path: Path, chain: tuple[Path, ...] = ()) -> DictConfig:
    """The YAML at ``path`` merged over its ``defaults:`` base, recursively (``chain``: the
    files that named this one, to refuse a loop)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in chain:
        raise ConfigError(f"{path}: its defaults: chain loops back to itself "
                          f"({' -> '.join(str(p) for p in (*chain, path.resolve()))})")
    data = load_yaml(path)
    base = data.pop("defaults", None)
    if base is None:
        return data
    return OmegaConf.merge(_load_yaml_with_base(_base_path(path, str(base)),
                                                (*chain, path.resolve())), data)


def _base_path(path: Path, base: str) -> Path:
    """The file a ``defaults: BASE`` line in ``path`` names: ``BASE`` beside ``path``, else the
    packaged recipe ``GROUP/NAME`` (``pretrain/tiny``), so a copied recipe keeps its base."""
    beside = path.parent / base
    if beside.is_file():
        return beside
    group, _, name = base.partition("/")
    if name and "/" not in name and group in recipe_groups():
        return recipe_path(group, name.removesuffix(".yaml"))
    raise ConfigError(f"{path}: its defaults: {base!r} is neither a file beside it ({beside}) "
                      "nor a packaged recipe GROUP/NAME (e.g. pretrain/tiny; see `endofm "
                      "configs`)")


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
    keeps the file a valid ``--config`` for the same command. Training loops use
    :func:`endofm.train.run_record.start_run`, which also records the inputs."""
    return save_settings(to_dict(cfg), Path(out_dir) / "config.yaml")


def save_settings(settings: Mapping[str, Any], path: Path) -> Path:
    """``settings`` as YAML at ``path`` (atomically), ending with the git-commit comment line."""
    text = OmegaConf.to_yaml(OmegaConf.create(dict(settings)))
    return atomic_write_text(text + f"{GIT_LINE} {git_commit() or 'unknown'}\n", path)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (lists are values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat
