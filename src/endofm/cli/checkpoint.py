"""``endofm info`` and ``endofm convert``: look inside checkpoints and convert them."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser(
        "info", help="show a checkpoint's layout, config and parameter count",
        description="Detect the layout of an Endo-FM/SVT/TimeSformer/PolypDiag checkpoint or an "
                    "endofm model directory and print what it contains.")
    info.add_argument("checkpoint", type=Path, help="a .pth file or an endofm model directory")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)

    convert = sub.add_parser(
        "convert", help="convert a checkpoint's backbone to the endofm format",
        description="Write the backbone of any supported checkpoint as model.safetensors + "
                    "config.json + a model card (README.md with the hub's metadata header), "
                    "loadable with endofm.create_model(name, pretrained=DIR) and ready to "
                    "upload to the Hugging Face hub.")
    convert.add_argument("checkpoint", type=Path,
                         help="a .pth file, an endofm model directory or an hf-hub:OWNER/NAME")
    convert.add_argument("--out", type=Path, required=True, help="output directory")
    convert.add_argument("--num-heads", type=int, default=None,
                         help="attention heads (not stored in released files; default: the "
                              "named config's for the file's width, e.g. 12 for 768; required "
                              "for other widths)")
    convert.add_argument("--license", default="other", metavar="ID",
                         help="the weights' licence as a hub licence id, for the model card "
                              "(default: other, i.e. not recorded)")
    convert.add_argument("--dataset", action="append", default=[], metavar="NAME",
                         help="a dataset the weights were trained on, for the model card "
                              "(repeat for several)")
    convert.set_defaults(func=run_convert)


def run_info(args: argparse.Namespace) -> int:
    meta = _feature_model_meta(args.checkpoint)
    if meta is not None:
        return _print_feature_model(args, meta)
    report, config = backbone_report(args.checkpoint)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['path']}\n  layout:      {report['layout']}")
    if report["kind"]:
        print(f"  model:       {_model_line(report)}")
    _print_backbone(report, config)
    return 0


def backbone_report(path: str | Path) -> tuple[dict, dict]:
    """What ``endofm info`` says about a checkpoint with a backbone (any layout), and the
    backbone's config."""
    from endofm.models import load_checkpoint
    from endofm.tasks.registry import task_for_kind

    ckpt = load_checkpoint(path)
    heads, heads_source = _num_heads(ckpt.config)
    meta = ckpt.extra.get("meta", {})  # what an endofm model folder (or file) records
    task = task_for_kind(meta.get("kind"))
    return {
        "path": str(ckpt.path),
        "layout": ckpt.layout,
        "kind": meta.get("kind"),  # endofm models: backbone, or a registered task's kind
        "task": task.name if task else None,
        "num_classes": meta.get("num_classes"),
        "class_names": meta.get("class_names"),
        "config": ckpt.config,
        "num_heads_stored": "num_heads" in ckpt.config,
        "num_heads": heads,
        "num_heads_source": heads_source,
        "backbone_parameters": sum(t.numel() for t in ckpt.state_dict.values()),
        "backbone_tensors": len(ckpt.state_dict),
        "head_tensors": sorted(ckpt.head_state_dict),
        "ignored": ckpt.ignored,
    }, ckpt.config


def _print_backbone(report: dict, config: dict) -> None:
    print("  config:      " + ", ".join(f"{k}={v}" for k, v in config.items()))
    if not report["num_heads_stored"]:
        print(f"  num_heads:   not stored; {report['num_heads_source']}")
    print(f"  parameters:  {report['backbone_parameters']:,} in "
          f"{report['backbone_tensors']} backbone tensors")
    head = report["head_tensors"]
    shown = ", ".join(head[:4]) + (" …" if len(head) > 4 else "")
    print(f"  head:        {len(head)} tensors ({shown})" if head else "  head:        none")
    print(f"  ignored:     {', '.join(report['ignored']) if report['ignored'] else 'nothing'}")


def _feature_model_meta(path: str | Path) -> dict | None:
    """The ``config.json`` of an endofm model folder whose model reads a backbone's features
    (the phase task's temporal model: its backbone lies in the folder's ``backbone_dir``);
    ``None`` for anything else."""
    from endofm.models.checkpoint import CheckpointError, read_state_meta
    from endofm.models.hub import resolve_weights

    path = resolve_weights(path)
    if not path.is_dir():
        return None
    try:
        meta = read_state_meta(path)
    except (CheckpointError, FileNotFoundError):
        return None  # not an endofm folder: load_checkpoint says what it is
    return {**meta, "path": str(path)} if meta.get("backbone_dir") else None


def _print_feature_model(args: argparse.Namespace, meta: dict) -> int:
    """``endofm info`` on a model of window features: the model, then the backbone in its
    folder."""
    from safetensors import safe_open

    from endofm.models.checkpoint import weights_file
    from endofm.tasks.registry import task_for_kind

    folder = Path(meta["path"])
    task = task_for_kind(meta.get("kind"))
    classes = meta.get("class_names") or meta.get("phases")
    with safe_open(str(weights_file(folder)), framework="pt") as f:
        tensors = {key: f.get_slice(key).get_shape() for key in f.keys()}
    backbone_dir = folder / meta["backbone_dir"]
    backbone = backbone_report(backbone_dir)[0] if backbone_dir.is_dir() else None
    report = {"path": str(folder), "kind": meta.get("kind"),
              "task": task.name if task else None, "num_classes": len(classes or []) or None,
              "class_names": classes, "parameters": sum(math.prod(s) for s in tensors.values()),
              "tensors": len(tensors), "backbone_dir": str(backbone_dir), "backbone": backbone}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{folder}\n  model:       {_model_line(report)}")
    print(f"  parameters:  {report['parameters']:,} in {report['tensors']} tensors")
    if backbone is None:
        print(f"  backbone:    not in the folder ({backbone_dir} is missing)")
        return 0
    print(f"  backbone:    {backbone_dir} (layout {backbone['layout']})")
    _print_backbone(backbone, backbone["config"])
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from endofm.models import create_model, load_checkpoint, save_pretrained
    from endofm.models.registry import resolve_num_heads

    ckpt = load_checkpoint(args.checkpoint)
    heads = resolve_num_heads(ckpt.config, args.num_heads, ckpt.path)
    model = create_model("endofm_vit_base_patch16", pretrained=args.checkpoint, num_heads=heads,
                         random_init=False)
    out = save_pretrained(model, args.out, license=args.license, datasets=args.dataset)
    print(f"wrote {out} (layout {ckpt.layout}, num_heads {heads}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


def _model_line(report: dict) -> str:
    """``classifier (task classification), 2 classes: normal, abnormal``."""
    line = report["kind"] + (f" (task {report['task']})" if report["task"] else "")
    names, count = report["class_names"], report["num_classes"]
    if names:
        return f"{line}, {len(names)} classes: {', '.join(map(str, names))}"
    return line + (f", {count} classes" if count else "")


def _num_heads(config: dict) -> tuple[int | None, str]:
    """The head count a checkpoint implies (``None`` when it cannot be known) and where it comes
    from, in words."""
    from endofm.models.registry import NAMED_HEADS

    if config.get("num_heads"):
        return int(config["num_heads"]), "stored in the file"
    width = config["embed_dim"]
    if width in NAMED_HEADS:
        return NAMED_HEADS[width], (f"{NAMED_HEADS[width]} from the named config of width "
                                    f"{width}")
    return None, (f"unknown: width {width} is not a named config's; give it with "
                  "`endofm convert --num-heads N` (or model.backbone.num_heads=N)")
