"""One pre-training step (forward of student and teacher on every view, loss, backward,
optimiser, EMA), in seconds and peak memory, for clips of T frames and each recipe.

    python benchmarks/pretrain_step.py [--device auto] [--frames 8 16 32] [--batch 1]
        [--recipes endofm lv] [--settings fp32 bf16+ckpt] [--repeats 2] [--tiny]

T is the longest global view: global views of T/2 and T frames at 224 px and 8 local views of
T/8, T/8, T/4, T/4, T/2, T/2, T, T frames at 96 px (T = 16 is the release's 8/16-frame recipe,
T = 32 EndoFM-LV's). ``endofm`` is the endofm_vitb recipe (the release's losses),
``endofm+lv`` the same with the successor's losses (Sinkhorn-Knopp, iBOT 0.5, KoLeo 0.1), ``lv``
the endofm_lv recipe. A setting is a precision (fp32 | bf16 | fp16), with ``+ckpt``
for activation checkpointing and ``+explicit`` for the released explicit attention form.
``--tiny`` runs a 2-block, 96-wide model on 64/32 px views (a check that the script works, e.g.
on a CPU). Peak memory is the allocator's high-water mark on CUDA, the resident-set high-water
mark on Linux CPUs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from backbone import _load, peak_memory_mib, timed

from endofm.config import RECIPES, load_config
from endofm.ssl import PretrainConfig, SSLMetaArch
from endofm.ssl.objective import SSLObjective
from endofm.ssl.trainer import build_encoder
from endofm.train import OptimizerStepper, build_optimizer, param_groups
from endofm.utils.device import autocast, make_grad_scaler, resolve_device

CONFIGS = RECIPES / "pretrain"
LV_LOSSES = ["loss.centering=sinkhorn_knopp", "loss.ibot_weight=0.5", "loss.koleo_weight=0.1"]
RECIPES = {"endofm": ("endofm_vitb.yaml", []),  # the release's losses
           "endofm+lv": ("endofm_vitb.yaml", LV_LOSSES),  # + the successor's losses
           "lv": ("endofm_lv.yaml", [])}  # EndoFM-LV's recipe
TINY = ["model.backbone.name=endofm_vit_tiny_patch16", "model.backbone.embed_dim=96",
        "model.backbone.depth=2", "model.backbone.num_heads=4", "head.out_dim=256",
        "head.hidden_dim=256", "head.bottleneck_dim=64", "views.global_size=64",
        "views.local_size=32"]


def view_frames(t: int) -> tuple[list[int], list[int]]:
    """(global, local) frame counts for clips of ``t`` frames."""
    if t % 8:
        raise ValueError(f"T must be a multiple of 8, got {t}")
    return [t // 2, t], [t // 8, t // 8, t // 4, t // 4, t // 2, t // 2, t, t]


def recipe_config(recipe: str, frames: int, precision: str, checkpointing: bool, tiny: bool):
    global_frames, local_frames = view_frames(frames)
    path, extra = RECIPES[recipe]
    overrides = [*extra, f"views.global_frames={global_frames}",
                 f"views.local_frames={local_frames}",
                 f"model.backbone.grad_checkpointing={checkpointing}",
                 f"train.precision={precision}", "model.backbone.pretrained=null",
                 *(TINY if tiny else [])]
    return load_config(PretrainConfig, CONFIGS / path, overrides)


def make_step(cfg, device: torch.device, batch: int,
              explicit: bool = False) -> Callable[[], None]:
    """A closure running one training step of ``cfg``'s model and losses on random views."""
    torch.manual_seed(0)
    meta = SSLMetaArch(build_encoder(cfg), SSLObjective(cfg.head.out_dim, cfg.loss),
                       teacher=cfg.ssl.teacher).to(device)
    for encoder in (meta.student, meta.teacher):
        encoder.backbone.set_explicit_attention(explicit)
    o = cfg.optim
    groups = param_groups(meta.student, o.weight_decay, decay_embeddings=o.decay_embeddings)
    stepper = OptimizerStepper(build_optimizer("adamw", groups, 1e-5),
                               make_grad_scaler(device, cfg.train.precision), o.clip_grad,
                               o.clip_mode)
    v = cfg.views
    shapes = ([(t, v.global_size) for t in v.global_frames]
              + [(t, v.local_size) for t in v.local_frames])
    views = [torch.randn(batch, 3, t, s, s, device=device) for t, s in shapes]
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        with autocast(device, cfg.train.precision):
            loss = meta(views, cfg.loss.teacher_temp, gen).loss.total
        stepper.backward(loss)
        stepper.step(meta.student.parameters())  # clip, optimiser step, zero the gradients
        meta.update_teacher(0.996)

    return step


def measure(recipe: str, frames: int, setting: str, batch: int, device: torch.device,
            repeats: int, tiny: bool = False) -> tuple[float, float | None]:
    """(seconds per step, peak MiB) of one recipe/T/setting."""
    precision, *flags = setting.split("+")
    cfg = recipe_config(recipe, frames, precision, "ckpt" in flags, tiny)
    step = make_step(cfg, device, batch, "explicit" in flags)
    seconds = timed(step, device, warmup=1, repeats=repeats)
    return seconds, peak_memory_mib(step, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 16, 32])
    parser.add_argument("--batch", type=int, default=1, help="clips per step")
    parser.add_argument("--recipes", nargs="+", default=["endofm", "lv"], choices=RECIPES)
    parser.add_argument("--settings", nargs="+", default=["fp32", "bf16+ckpt"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="a tiny model on small views")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    model = "tiny (96 wide, 2 blocks, 64/32 px)" if args.tiny else "ViT-B/16 (224/96 px)"
    print(f"pre-training step, {model}, batch {args.batch}, 2 global + 8 local views on {name} "
          f"({torch.get_num_threads()} threads, load {_load()})")
    print(f"{'T':>3} {'recipe':>9} {'setting':>13} {'s/step':>8} {'peak MiB':>9}")
    for frames in args.frames:
        for recipe in args.recipes:
            for setting in args.settings:
                seconds, peak = measure(recipe, frames, setting, args.batch, device,
                                        args.repeats, args.tiny)
                peak_s = f"{peak:9.0f}" if peak is not None else f"{'n/a':>9}"
                print(f"{frames:>3} {recipe:>9} {setting:>13} {seconds:8.2f} {peak_s}",
                      flush=True)


if __name__ == "__main__":
    main()
