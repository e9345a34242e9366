"""Does the tiny classification recipe generalise? F1 of ``endofm finetune classification``
(``--config``, default: the packaged tiny_robust recipe; from a tiny pre-training on the
same render's raw videos) beside the frozen-feature linear probe of that backbone, on several
renders of the sample data: differently seeded ``white_light`` renders and an ``nbi`` render
(another colour scheme, lighting and polyp look, never used to tune the recipe).

    python benchmarks/classification_renders.py [--renders 1:white_light 2:white_light ...]
        [--scale bench] [--config YAML] [--threads 1] [--out DIR] [key=value ...]

Each render is ``endofm.data.synth`` at ``--scale`` (default ``bench``: the pre-training videos
of ``small``, 48 training and 48 test PolypDiag videos, half of them abnormal; ``small`` has
16 + 8, too few test videos for F1 to mean much). ``key=value`` overrides go to the fine-tuning
config. Goal: F1 ≥ 0.9 on every render and never below the linear probe.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from endofm.config import load_config, recipe_path
from endofm.data.synth import SCALES, synth_polypdiag, synth_pretrain_videos
from endofm.data.synth_render import get_style
from endofm.eval.probe import ProbeConfig, run_probe
from endofm.ssl import PretrainConfig, pretrain
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.engine import fit

ROOT = Path(__file__).resolve().parents[1]
FINETUNE = recipe_path("classification", "tiny_robust")
PRETRAIN = recipe_path("pretrain", "tiny")
PROBE = recipe_path("probe", "tiny")
RENDERS = ["1:white_light", "2:white_light", "3:white_light", "0:nbi"]


def run_render(seed: int, style: str, out: Path, config: Path, overrides: list[str],
               scale_name: str = "bench") -> dict[str, float]:
    start = time.perf_counter()
    scale, look = SCALES[scale_name], get_style(style)
    videos = synth_pretrain_videos(out, seed, scale, look)
    data = synth_polypdiag(out, seed, scale, look)
    cfg = load_config(PretrainConfig, PRETRAIN, ["train.progress=false", "train.device=cpu"])
    pretrain(cfg, videos, out / "pretrain")
    backbone = out / "pretrain" / "backbone"
    task_cls = TASKS["classification"]
    ft_cfg = load_config(task_config_schema(task_cls), config, ["train.device=cpu", *overrides])
    tic = time.perf_counter()
    metrics = fit(task_cls(ft_cfg), data, out / "finetune", backbone)
    minutes = (time.perf_counter() - tic) / 60
    d = ft_cfg.data
    probe_cfg = load_config(ProbeConfig, PROBE, [
        "device=cpu", f"data.num_frames={d.num_frames}", f"data.frame_step={d.frame_step}",
        f"data.test_clips={d.test_clips}", f"data.test_short_side={d.test_short_side}",
        f"data.crop_size={d.crop_size}"])
    probe = run_probe(probe_cfg, backbone, data, out / "probe", method="linear")
    return {"f1": metrics["f1"], "auroc": metrics["auroc"] or 0.0,
            "selected_epoch": metrics["selected_epoch"], "probe_f1": probe["f1"],
            "probe_auroc": probe["auroc"] or 0.0, "minutes": minutes,
            "total_minutes": (time.perf_counter() - start) / 60,
            "videos": (f"{metrics['num_train_items']}+{metrics['num_selection_items']}/"
                       f"{metrics['num_test_items']}")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", nargs="+", default=RENDERS, metavar="SEED:STYLE")
    parser.add_argument("--scale", default="bench", choices=sorted(SCALES),
                        help="synth scale of each render (default bench)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--config", type=Path, default=FINETUNE, help="fine-tuning YAML")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        print("render          videos     finetune_f1  auroc  epoch  probe_f1  probe_auroc  "
              "ok   ft_min  all_min")
        all_ok = True
        for render in args.renders:
            seed, style = render.split(":")
            r = run_render(int(seed), style, out / f"{style}_{seed}", args.config,
                           args.overrides, args.scale)
            ok = r["f1"] >= 0.9 and r["f1"] >= r["probe_f1"]
            all_ok &= ok
            print(f"{render:15s} {r['videos']:9s}  {r['f1']:11.3f}  {r['auroc']:5.3f}  "
                  f"{r['selected_epoch']:5d}  {r['probe_f1']:8.3f}  {r['probe_auroc']:11.3f}  "
                  f"{'yes' if ok else 'NO':3s}  {r['minutes']:6.1f}  {r['total_minutes']:7.1f}",
                  flush=True)
        print(f"goal (F1 >= 0.9 and >= the linear probe on every render): "
              f"{'met' if all_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
