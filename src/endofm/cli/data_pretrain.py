"""``endofm data prepare-pretrain`` and ``endofm data preview-views``.

``endofm.cli.data`` creates the ``data`` command group and calls :func:`add_commands`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path


def add_commands(data_sub: argparse._SubParsersAction) -> None:
    """Add ``prepare-pretrain`` and ``preview-views`` to the ``data`` sub-commands."""
    prep = data_sub.add_parser(
        "prepare-pretrain", help="build a pre-training manifest from folders of videos",
        description="Scan folders of videos / frame folders (one source per folder, NAME=DIR to "
                    "name it), cut every video into clips and write DIR/manifest.csv "
                    "(path,start,end,label,source) and DIR/prepare_report.json. Every row is "
                    "checked to decode; skipped files are listed with the reason.")
    prep.add_argument("sources", nargs="+", metavar="SRC", help="DIR or NAME=DIR")
    prep.add_argument("--out", type=Path, required=True, help="output directory")
    prep.add_argument("--clip-seconds", type=float, default=5.0, help="clip length (default 5)")
    prep.add_argument("--transcode", action="store_true",
                      help="write each clip as an MP4 with short side --short-side")
    prep.add_argument("--short-side", type=int, default=256, help="with --transcode (256)")
    prep.add_argument("--fps", dest="folder_fps", type=float, default=30.0,
                      help="frame rate of frame folders (default 30; recorded in the "
                           "manifest's fps column)")
    prep.add_argument("--json", action="store_true", help="print the report as one JSON object")
    prep.set_defaults(func=run_prepare_pretrain)

    preview = data_sub.add_parser(
        "preview-views", help="write PNG contact sheets of the pre-training views",
        description="Render the 10 pre-training views (2 global, 8 local) of a few clips of "
                    "SOURCE (a video, frame folder, folder of videos or manifest) as PNGs.")
    preview.add_argument("source", type=Path, metavar="SOURCE")
    preview.add_argument("--out", type=Path, required=True, help="output directory")
    preview.add_argument("--num-clips", type=int, default=2)
    preview.add_argument("--seed", type=int, default=0)
    preview.add_argument("--fps", dest="folder_fps", type=float, default=30.0,
                         help="frame rate of frame folders (default 30)")
    preview.add_argument("--config", type=Path, default=None,
                         help="YAML with view settings (PretrainViewsConfig fields)")
    preview.add_argument("--set", dest="overrides", nargs="+", action="extend", default=[],
                         metavar="KEY=VALUE",
                         help="view settings, e.g. --set global_size=112 local_scale=[0.1,0.4]")
    preview.set_defaults(func=run_preview_views)


def run_prepare_pretrain(args: argparse.Namespace) -> int:
    from endofm.data.prepare import prepare_pretrain

    report = prepare_pretrain(args.sources, args.out, clip_seconds=args.clip_seconds,
                              transcode=args.transcode, short_side=args.short_side,
                              folder_fps=args.folder_fps, progress=not args.json)
    if args.json:
        print(json.dumps(asdict(report)))
        return 0
    print(f"wrote {report.manifest}: {report.num_clips} clips from {report.num_videos} videos "
          f"({', '.join(f'{k}: {v}' for k, v in report.sources.items())})")
    if report.skipped:
        print(f"skipped {len(report.skipped)}:", file=sys.stderr)
        for item in report.skipped:
            print(f"  {item['path']}: {item['reason']}", file=sys.stderr)
    return 0


def run_preview_views(args: argparse.Namespace) -> int:
    from endofm.config import load_config
    from endofm.data.preview import preview_views
    from endofm.data.views import PretrainViewsConfig

    cfg = load_config(PretrainViewsConfig, args.config, args.overrides)
    paths = preview_views(args.source, args.out, num_clips=args.num_clips, seed=args.seed,
                          cfg=cfg, folder_fps=args.folder_fps)
    for path in paths:
        print(path)
    return 0
