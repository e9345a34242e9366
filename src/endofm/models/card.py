"""The model card written beside every endofm model folder (``README.md``).

Its YAML header carries the Hugging Face hub's metadata (``license``, ``library_name``,
``tags``, ``pipeline_tag``, ``datasets`` when known), so a folder written by
:func:`~endofm.models.registry.save_pretrained`, ``endofm convert`` or ``endofm finetune`` can
be uploaded to the hub as it is and read back with ``pretrained="hf-hub:OWNER/NAME"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

CARD_NAME = "README.md"
TAGS = ["endofm", "endo-fm", "endoscopy", "video", "vision-transformer", "timesformer"]
# What each kind of endofm folder does, in the hub's task vocabulary.
PIPELINE_TAGS = {"backbone": "feature-extraction", "classifier": "video-classification",
                 "segmenter": "image-segmentation", "detector": "object-detection"}
LOADERS = {"backbone": 'endofm.create_model("endofm_vit_base_patch16", '
                       'pretrained="hf-hub:OWNER/NAME")',
           "classifier": 'endofm.load_task_model("hf-hub:OWNER/NAME")',
           "segmenter": 'endofm.load_task_model("hf-hub:OWNER/NAME")',
           "detector": 'endofm.load_task_model("hf-hub:OWNER/NAME")'}


def model_card(meta: Mapping[str, Any], license: str = "other",
               datasets: Sequence[str] = ()) -> str:
    """The card of a folder whose ``config.json`` is ``meta``.

    Args:
        meta: the folder's ``config.json`` object (``kind``, ``backbone``, …).
        license: the weights' licence as a hub licence id; ``"other"`` when unknown (the card
            then asks for it to be set before an upload).
        datasets: hub dataset ids (or names) of the training data, when known.

    Returns:
        The card's Markdown, a YAML metadata header first.
    """
    kind = str(meta.get("kind", "backbone"))
    header: dict[str, Any] = {"license": license, "library_name": "endofm",
                              "tags": [*TAGS, kind]}
    if kind in PIPELINE_TAGS:
        header["pipeline_tag"] = PIPELINE_TAGS[kind]
    if datasets:
        header["datasets"] = list(datasets)
    body = [f"# endofm {kind}", "", _architecture(kind, meta), "", "## Training data", "",
            _training_data(datasets), "", "## Licence", "", _licence(license), "",
            "## How to load", "", "```python", "import endofm", "",
            f"model = {LOADERS.get(kind, LOADERS['backbone'])}", "```", "",
            "Replace `OWNER/NAME` with the repository this folder was uploaded to, or pass the "
            "folder's path. Files: `model.safetensors` (the weights), `config.json` (the "
            "architecture and task settings endofm reads), this card."]
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body) + "\n"


def _architecture(kind: str, meta: Mapping[str, Any]) -> str:
    arch = meta.get("backbone") or {}
    if not arch:
        return f"An Endo-FM {kind} written by endofm."
    size = arch.get("img_size")
    text = (f"An Endo-FM {kind} written by endofm: a video vision transformer "
            f"(TimeSformer-style, `{arch.get('attention_type', 'divided_space_time')}` "
            f"attention) of width {arch.get('embed_dim')}, depth {arch.get('depth')} and "
            f"{arch.get('num_heads')} heads, on clips of {arch.get('num_frames')} frames of "
            f"{size}×{size} pixels in {arch.get('patch_size', 16)}-pixel patches.")
    classes = meta.get("classes") or meta.get("num_classes")
    if classes:
        names = [c.get("name", c) if isinstance(c, Mapping) else c for c in classes] \
            if isinstance(classes, list) else None
        text += (f" Classes: {', '.join(map(str, names))}." if names
                 else f" {classes} classes.")
    return text


def _training_data(datasets: Sequence[str]) -> str:
    if datasets:
        return "Trained on: " + ", ".join(datasets) + "."
    return ("Not recorded in this folder: name the data the weights were trained on (add "
            "`datasets:` to the header) before sharing them.")


def _licence(license: str) -> str:
    if license != "other":
        return f"`{license}`."
    return ("Not recorded: set `license:` in the header to the licence of these weights and of "
            "the data they were trained on before uploading them.")
