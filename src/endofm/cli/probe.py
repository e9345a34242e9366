"""``endofm probe``: frozen-feature k-NN / linear probes of a backbone checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

# The choices of ``endofm.eval.probe.FORMATS`` / ``METHODS``, spelled out so that building the
# parser does not import torch (tests/cli/test_startup.py checks they agree).
FORMATS = ("folders", "manifest", "polypdiag")
METHODS = ("knn", "linear", "all")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe", help="k-NN / linear probe of a frozen backbone",
        description="Evaluate a frozen backbone: clip features of the training split feed a "
                    "cosine k-NN (temperature-weighted votes, one result per k) and a logistic "
                    "regression (C chosen by cross-validation on the training split); the "
                    "held-out split is scored with fine-tuning's metrics. Features are cached.")
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="backbone checkpoint (any layout endofm.create_model reads); "
                        "omitted: a randomly initialised backbone (model.init_seed)")
    p.add_argument("--data", type=Path, required=True,
                   help="dataset root (a manifest file for --format manifest)")
    p.add_argument("--format", default="polypdiag", choices=FORMATS,
                   help="polypdiag (default), or your own labelled videos: manifest "
                        "(path,label CSV/JSONL) or folders (DIR/<class>/<video>)")
    p.add_argument("--method", default="all", choices=METHODS)
    p.add_argument("--output", type=Path, required=True, help="folder for metrics.json")
    p.add_argument("--cache", type=Path, default=None,
                   help="feature cache folder (default OUTPUT/features)")
    p.add_argument("--config", help="a recipe name (tiny; see `endofm configs`) or a YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="e.g. probe.k=[5,10] data.test_clips=3")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from endofm.config import load_config, resolve_config
    from endofm.eval.probe import ProbeConfig, run_probe
    from endofm.models.hub import check_weights_exist

    cfg = load_config(ProbeConfig, resolve_config("probe", args.config), args.overrides)
    if args.checkpoint is not None:
        check_weights_exist(args.checkpoint)
    result = run_probe(cfg, args.checkpoint, args.data, args.output, args.format, args.method,
                       args.cache)
    for name, m in result["probes"].items():
        auroc = "n/a" if m["auroc"] is None else f"{m['auroc']:.4f}"
        capped = (f" (k={m['k']} > {m['k_used']} training videos: all of them vote)"
                  if "k" in m and m["k_used"] < m["k"] else "")
        print(f"{name}: accuracy {m['accuracy']:.4f}, f1 {m['f1']:.4f}, auroc {auroc}{capped}")
    print(f"wrote {args.output / 'metrics.json'}")
    return 0
