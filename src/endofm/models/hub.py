"""Weights named on the Hugging Face hub, resolved through ``huggingface_hub`` and its cache.

Wherever endofm takes a path to weights (``create_model(pretrained=...)``, ``--checkpoint``,
``--pretrained``, ``model.backbone.pretrained``), ``hf-hub:OWNER/NAME[/FILE][@REVISION]``
names a hub repository instead:

* ``hf-hub:OWNER/NAME``: the repository is an endofm folder (``model.safetensors`` +
  ``config.json``, as :func:`~endofm.models.registry.save_pretrained` writes it); the local
  snapshot folder holding both is returned;
* ``hf-hub:OWNER/NAME/FILE``: one file of it (e.g. a released ``endo_fm.pth``);
* ``@REVISION``: a branch, tag or commit.

The cache is ``HF_HUB_CACHE`` (else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``), read
when a name is resolved. With ``HF_HUB_OFFLINE=1`` only the cache is read; a file missing from
it is a :class:`HubWeightsNotFound` in one line saying what to download and where it belongs.
Only ``hf-hub:`` names reach the network; every other path is returned as it is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "hf-hub:"
FOLDER_FILES = ("model.safetensors", "config.json")
TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
FIRST_MIB = 1 << 20  # what the fingerprint of records written before the whole-file SHA-256 hashed


class HubWeightsNotFound(FileNotFoundError):
    """A hub name whose files are neither in the cache nor downloadable."""


@dataclass(frozen=True)
class HubName:
    """A parsed ``hf-hub:`` name."""

    repo_id: str  # OWNER/NAME
    filename: str | None  # a file of the repository; None: the endofm folder
    revision: str | None  # branch, tag or commit; None: the default branch

    def __str__(self) -> str:
        file = f"/{self.filename}" if self.filename else ""
        return f"{PREFIX}{self.repo_id}{file}" + (f"@{self.revision}" if self.revision else "")


def is_hub_name(value: str | Path | None) -> bool:
    """Whether ``value`` is an ``hf-hub:`` name rather than a path."""
    return value is not None and str(value).startswith(PREFIX)


def parse_hub_name(value: str | Path) -> HubName:
    """``hf-hub:OWNER/NAME[/FILE][@REVISION]`` → :class:`HubName`; anything else is a
    ``ValueError`` naming the expected form."""
    text = str(value)[len(PREFIX):]
    text, _, revision = text.partition("@")
    parts = text.split("/")
    if len(parts) < 2 or not all(parts) or not str(value).startswith(PREFIX):
        raise ValueError(f"{value!s}: a hub name has the form hf-hub:OWNER/NAME[/FILE][@REVISION]")
    return HubName("/".join(parts[:2]), "/".join(parts[2:]) or None, revision or None)


def hub_cache() -> Path:
    """The hub cache folder, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home) / "hub"


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_VALUES


def resolve_weights(path: str | Path) -> Path:
    """``path`` as a local path: an ``hf-hub:`` name becomes the cached file (or, for a whole
    repository, the snapshot folder holding ``model.safetensors`` and ``config.json``),
    downloaded first unless ``HF_HUB_OFFLINE`` is set; any other path is returned unchanged.

    Args:
        path: a file or folder, or an ``hf-hub:OWNER/NAME[/FILE][@REVISION]`` name.

    Returns:
        The local path to read.

    Raises:
        HubWeightsNotFound: the file is not in the cache and cannot be downloaded.
        ImportError: ``huggingface_hub`` is not installed (the ``[hub]`` extra).
    """
    if not is_hub_name(path):
        return Path(path)
    name = parse_hub_name(path)
    files = [name.filename] if name.filename else list(FOLDER_FILES)
    local = [_download(name, file) for file in files]
    return local[0] if name.filename else local[0].parent


def _download(name: HubName, filename: str) -> Path:
    try:
        import huggingface_hub
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:
        raise ImportError(f"{name}: reading weights from the hub needs huggingface_hub: "
                          "pip install 'endofm[hub]'") from exc
    try:
        return Path(huggingface_hub.hf_hub_download(
            name.repo_id, filename, revision=name.revision, cache_dir=hub_cache(),
            local_files_only=hub_offline()))
    except LocalEntryNotFoundError as exc:  # (a subclass of EntryNotFoundError: first)
        raise HubWeightsNotFound(_missing_message(name, filename)) from exc
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise HubWeightsNotFound(f"{name}: no such repository or revision on the hub "
                                 f"({type(exc).__name__})") from exc
    except EntryNotFoundError as exc:
        raise HubWeightsNotFound(f"{name}: the repository has no file {filename}") from exc


def _missing_message(name: HubName, filename: str) -> str:
    files = " ".join([name.filename] if name.filename else FOLDER_FILES)
    why = ("HF_HUB_OFFLINE=1 forbids downloading it" if hub_offline()
           else "it could not be downloaded (no network?)")
    revision = f" --revision {name.revision}" if name.revision else ""
    return (f"{name}: {filename} is not in the hub cache {hub_cache()} and {why}; on a machine "
            f"with a network run `hf download {name.repo_id} {files}{revision} --cache-dir "
            f"CACHE` and copy CACHE to {hub_cache()}, or pass the downloaded files' folder "
            "as a path")


def check_weights_exist(path: str | Path, what: str = "checkpoint") -> None:
    """A ``FileNotFoundError`` naming ``path`` when it is a local path that does not exist
    (an ``hf-hub:`` name is checked when it is resolved)."""
    if not is_hub_name(path) and not Path(path).exists():
        raise FileNotFoundError(f"{what} not found: {path}")


def weights_fingerprint(path: str | Path) -> dict[str, Any]:
    """What a run record keeps of the weights it read: ``{"path", "size", "sha256"}`` of the
    weights file (of a model folder: its ``model.safetensors``), and ``"name"`` when ``path``
    was an ``hf-hub:`` name. The SHA-256 is of the whole file."""
    resolved = resolve_weights(path).resolve()
    weights = resolved / FOLDER_FILES[0] if resolved.is_dir() else resolved
    with open(weights, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    record: dict[str, Any] = {"path": str(resolved), "size": weights.stat().st_size,
                              "sha256": digest}
    if is_hub_name(path):
        record["name"] = str(path)
    return record


def first_mib_sha256(path: str | Path) -> str:
    """The SHA-256 of the first MiB of the weights file at ``path`` (of a model folder: its
    ``model.safetensors``), as run records written before the whole file's SHA-256 kept it."""
    path = Path(path)
    weights = path / FOLDER_FILES[0] if path.is_dir() else path
    with open(weights, "rb") as f:
        return hashlib.sha256(f.read(FIRST_MIB)).hexdigest()


def comparable_fingerprint(before: Mapping[str, Any], now: Mapping[str, Any]) -> dict[str, Any]:
    """``before`` (a recorded :func:`weights_fingerprint`) in the terms of ``now`` (today's).

    A record an older endofm wrote holds ``sha256_first_mib`` (the first MiB's digest) instead
    of ``sha256``: it is compared with that digest of the file ``now`` names. When they agree,
    ``before`` takes ``now``'s ``sha256`` (nothing recorded tells the two apart); else its
    ``sha256`` says the first MiB changed. A record holding ``sha256`` is returned as it is.
    """
    if "sha256" in before or "sha256_first_mib" not in before:
        return dict(before)
    old = {k: v for k, v in before.items() if k != "sha256_first_mib"}
    first_mib = str(before["sha256_first_mib"])
    same = first_mib_sha256(now["path"]) == first_mib
    old["sha256"] = now["sha256"] if same else f"other bytes (first MiB {first_mib[:12]}…)"
    return old
