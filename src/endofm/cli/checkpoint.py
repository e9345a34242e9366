"""``endofm info`` and ``endofm convert``: look inside checkpoints and convert them."""

from __future__ import annotations

import argparse
import json
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
    from endofm.models import load_checkpoint
    from endofm.tasks.registry import task_for_kind

    ckpt = load_checkpoint(args.checkpoint)
    heads, heads_source = _num_heads(ckpt.config)
    meta = ckpt.extra.get("meta", {})  # what an endofm model folder (or file) records
    task = task_for_kind(meta.get("kind"))
    report = {
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
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['path']}\n  layout:      {report['layout']}")
    if report["kind"]:
        print(f"  model:       {_model_line(report)}")
    print("  config:      " + ", ".join(f"{k}={v}" for k, v in ckpt.config.items()))
    if not report["num_heads_stored"]:
        print(f"  num_heads:   not stored; {heads_source}")
    print(f"  parameters:  {report['backbone_parameters']:,} in "
          f"{report['backbone_tensors']} backbone tensors")
    head = report["head_tensors"]
    shown = ", ".join(head[:4]) + (" …" if len(head) > 4 else "")
    print(f"  head:        {len(head)} tensors ({shown})" if head else "  head:        none")
    print(f"  ignored:     {', '.join(ckpt.ignored) if ckpt.ignored else 'nothing'}")
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
