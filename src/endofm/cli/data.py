"""``endofm data``: the data command group (``synth``, ``inspect``, and the pre-training
data commands of :mod:`endofm.cli.data_pretrain`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from endofm.cli import data_pretrain

MAX_ERRORS_SHOWN = 20
# The choices of ``endofm.data.inspect.FORMATS``, ``endofm.data.synth.SCALES`` and
# ``endofm.data.synth_render.STYLES``, spelled out so that building the parser does not import
# the data modules (tests check they agree).
FORMATS = ("videos", "polypdiag", "cvc", "kumc", "cholec80", "autolaparo", "segments",
           "manifest", "folders", "image_masks", "coco", "voc")
SCALES = ("bench", "demo", "small", "tiny")
STYLES = ("nbi", "white_light")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``data`` group and its sub-commands."""
    data = sub.add_parser("data", help="sample data, dataset inspection, pre-training data",
                          description="Work with datasets: make the built-in sample data, "
                                      "inspect a dataset, prepare pre-training manifests.")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    synth = data_sub.add_parser(
        "synth", help="write the built-in synthetic sample data",
        description="Render a small synthetic endoscopy dataset: DIR/videos (pre-training), "
                    "DIR/polypdiag, DIR/cvc and DIR/kumc in the public download layouts.")
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--scale", choices=SCALES, default="small",
                       help="dataset size (default small)")
    synth.add_argument("--style", choices=STYLES, default="white_light",
                       help="visual style: colours, lighting, polyp look (default white_light)")
    synth.set_defaults(func=run_synth)

    inspect = data_sub.add_parser(
        "inspect", help="count a dataset's videos/frames/labels and list broken files",
        description="Read every item of a dataset folder and report counts and every "
                    "unreadable or inconsistent file. Exit status 0 when the dataset could be "
                    "read, even with errors listed.")
    inspect.add_argument("root", type=Path, metavar="DIR",
                         help="the dataset folder (or a manifest file)")
    inspect.add_argument("--format", dest="fmt", choices=("auto", *FORMATS), default="auto")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--classes-file", type=Path, default=None,
                         help="own formats: the classes file (default DIR/classes.yaml, or a "
                              "CVAT labelmap.txt)")
    inspect.add_argument("--mask-suffix", default="_mask",
                         help="image_masks: masks are <frame stem><suffix>.<ext> (default "
                              "_mask)")
    inspect.add_argument("--ignore-index", type=int, default=None,
                         help="image_masks: a mask value that is neither class nor error")
    inspect.add_argument("--image-folder", default=None,
                         help="image_masks: the frames' folder under DIR where it is not "
                              "images/ or JPEGImages/ (one '*' folder: a video each)")
    inspect.add_argument("--mask-folder", default=None,
                         help="image_masks: the masks' folder under DIR (as --image-folder)")
    inspect.add_argument("--image-root", type=Path, default=None,
                         help="coco: where image file names resolve (default: beside the file)")
    inspect.add_argument("--unannotated", choices=("negative", "skip"), default="negative",
                         help="coco: images without annotations are negatives (default) or "
                              "unlabelled context frames")
    inspect.add_argument("--video-of", choices=("auto", "video_id", "prefix", "none"),
                         default="auto", help="coco, voc: how frames group into videos")
    inspect.add_argument("overrides", nargs="*", metavar="data.KEY=VALUE",
                         help="the same reader settings as finetune takes them "
                              f"({', '.join(f'data.{key}' for key in INSPECT_SETTINGS)}), so "
                              "that one command line's settings serve both")
    inspect.set_defaults(func=run_inspect)

    data_pretrain.add_commands(data_sub)


def run_synth(args: argparse.Namespace) -> int:
    from endofm.data.synth import synthesize

    paths = synthesize(args.out, seed=args.seed, scale=args.scale, style=args.style)
    for name, path in paths.items():
        print(f"{name:10s} {path}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable lines for an :func:`inspect_dataset` summary."""
    lines = [f"{summary['root']}  (format: {summary['format']})",
             f"  videos/sequences: {summary['num_videos']}",
             f"  frames:           {summary['num_frames']}"]
    if summary["label_counts"]:
        counts = ", ".join(f"{k}: {v}" for k, v in summary["label_counts"].items())
        lines.append(f"  labels:           {counts}")
    for name, part in summary.get("splits", {}).items():
        if "label_counts" in part and "classes" in summary:
            counts = ", ".join(f"{k}: {v}" for k, v in part["label_counts"].items())
            lines.append(f"  {name + ':':17s} {part['num_videos']} videos ({counts})")
        elif "num_frames" in part:
            lines.append(f"  {name + ':':17s} {part['num_videos']} videos, "
                         f"{part['num_frames']} frames")
    if "frames_per_video" in summary:
        f = summary["frames_per_video"]
        lines.append(f"  frames/video:     {f['min']}-{f['max']} (median {f['median']:g})")
    values = summary.get("mask_values")
    if values:
        seen = ", ".join(values["seen"])
        lines.append(f"  mask values:      {values['encoding']}; "
                     + (f"seen {seen}" if seen else "lossy masks, snapped to the nearest "
                        "declared value"))
        for value, files in values["undeclared"].items():
            lines.append(f"    undeclared {value}: {', '.join(files)}")
        far = values.get("lossy_far_from_declared", {})
        if far.get("count"):
            lines.append(f"    {far['count']} lossy masks far from every declared value "
                         "(an undeclared class?), e.g.:")
            lines += [f"      {m['path']}: {m['share']:.1%} of the pixels, most near {m['value']}"
                      for m in far["masks"]]
    if summary["num_masks"]:
        lines.append(f"  masks:            {summary['num_masks']}")
    if summary["num_boxes"]:
        lines.append(f"  boxes:            {summary['num_boxes']}")
    if "phases" in summary:
        lines += format_phases(summary)
    errors = summary["errors"]
    lines.append(f"  errors:           {len(errors)}")
    lines += [f"    {e['path']}: {e['reason']}" for e in errors[:MAX_ERRORS_SHOWN]]
    if len(errors) > MAX_ERRORS_SHOWN:
        lines.append(f"    … {len(errors) - MAX_ERRORS_SHOWN} more (use --json for all)")
    return "\n".join(lines)


def format_phases(summary: dict[str, Any]) -> list[str]:
    """A phase dataset's lines: each video's phases in order with their durations, the total
    time per phase, and the split rule."""
    lines = []
    for name, video in summary["videos"].items():
        runs = ", ".join(f"{s['phase']} {s['end_s'] - s['start_s']:.0f}s"
                         for s in video["segments"])
        lines.append(f"  {name} ({video['duration_s']:.0f} s, {video['rows_per_s']:g} rows/s): "
                     f"{runs}")
    totals = ", ".join(f"{k} {v:.0f}s" for k, v in summary["phase_s"].items())
    lines.append(f"  time per phase:   {totals}")
    if "split" in summary:
        lines.append(f"  split:            {summary['split']['rule']}")
    return lines


# ``data.KEY`` settings of the fine-tuning recipes that ``data inspect`` takes as options
INSPECT_SETTINGS = ("classes_file", "mask_suffix", "ignore_index", "image_folder",
                    "mask_folder", "image_root", "unannotated", "video_of")


def apply_data_overrides(args: argparse.Namespace) -> None:
    """Set ``args``' reader options from ``data.KEY=VALUE`` overrides (an override wins over
    the option). Raises ``ConfigError`` for a key inspect does not read or a value that does
    not fit."""
    from endofm.config import ConfigError

    for override in args.overrides:
        key, _, value = override.partition("=")
        name = key.removeprefix("data.")
        if not key.startswith("data.") or name not in INSPECT_SETTINGS:
            raise ConfigError(f"data inspect: {override!r} is not a reader setting; it takes "
                              f"{', '.join(f'data.{k}' for k in INSPECT_SETTINGS)}")
        if name in ("unannotated", "video_of"):
            choices = {"unannotated": ("negative", "skip"),
                       "video_of": ("auto", "video_id", "prefix", "none")}[name]
            if value not in choices:
                raise ConfigError(f"data inspect: {key} must be one of {', '.join(choices)}, "
                                  f"got {value!r}")
        if name == "ignore_index":
            try:
                value = None if value in ("", "null") else int(value)
            except ValueError:
                raise ConfigError(f"data inspect: {key} must be an integer mask value, got "
                                  f"{value!r}") from None
        elif name in ("classes_file", "image_root"):
            value = None if value in ("", "null") else Path(value)
        elif name in ("image_folder", "mask_folder"):
            value = None if value in ("", "null") else value
        setattr(args, name, value)


def run_inspect(args: argparse.Namespace) -> int:
    from endofm.data.formats import FormatOptions
    from endofm.data.inspect import inspect_dataset

    apply_data_overrides(args)
    options = FormatOptions(None if args.classes_file is None else str(args.classes_file),
                            mask_suffix=args.mask_suffix, ignore_index=args.ignore_index,
                            image_folder=args.image_folder, mask_folder=args.mask_folder,
                            image_root=None if args.image_root is None else str(args.image_root),
                            unannotated=args.unannotated, video_of=args.video_of)
    summary = inspect_dataset(args.root, args.fmt, options)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
