"""Make ``tests/assets/release_step/``: three pre-training steps of the release's own code.

Runs the release's ``train_ssl.train_one_epoch`` (one iteration per "epoch", so the last layer
is frozen for step 0 only) with its TimeSformer ``VisionTransformer``, ``DINOHead``,
``MultiCropWrapper``, ``DINOLoss``, ``utils.get_params_groups``, ``utils.cosine_scheduler``,
``utils.clip_gradients``, ``utils.cancel_gradients_last_layer`` and its inline EMA update, on a
tiny backbone, in fp32 on the CPU, drop path 0 (deterministic). Nothing of the release is copied
into endofm: this script imports it from a checkout given on the command line::

    git clone https://github.com/med-air/Endo-FM /tmp/release_env/Endo-FM
    pip install --target /tmp/release_env/site --no-deps einops
    PYTHONPATH=/tmp/release_env/site python scripts/make_release_step_fixture.py \\
        /tmp/release_env/Endo-FM --out tests/assets/release_step

Only what a CPU-only, modern environment needs is patched, at run time: ``Tensor.cuda`` and
``torch.cuda.synchronize`` become no-ops, ``MetricLogger.synchronize_between_processes`` (logging;
it builds CUDA tensors) is skipped, and modules the step never touches are stubbed so that
``train_ssl`` imports (``thop``, the ``datasets`` package with its kornia/cv2 readers,
``utils.parser`` with fvcore).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import types
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch import nn

TINY = {"img_size": 48, "patch_size": 16, "embed_dim": 32, "depth": 2, "num_heads": 2,
        "num_frames": 4, "out_dim": 128, "hidden_dim": 64, "bottleneck_dim": 32}
GLOBAL_FRAMES, LOCAL_FRAMES, LOCAL_SIZE, BATCH = (4, 8), (2, 2, 2, 2, 4, 4, 4, 4), 32, 2
# (base, final, warm-up epochs, warm-up start). The lr warms up from a small value: at step 0
# AdamW's update is g / (|g| + eps), a sign that float noise flips where g is ~0, so a large
# step-0 lr would turn rounding differences into visible ones.
SCHEDULES = {"lr": (2e-3, 1e-4, 1, 1e-4), "wd": (0.04, 0.4, 0, 0.0),
             "momentum": (0.9, 1.0, 0, 0.0)}
CLIP_GRAD, TEACHER_TEMP, STEPS, SEED = 0.05, 0.04, 3, 0


def import_release(root: Path) -> types.SimpleNamespace:
    """The release's modules, with imports the training step never uses stubbed out."""
    sys.path.insert(0, str(root))
    stubs = {"thop": {"profile": None}, "datasets": {"Kinetics": None},
             "datasets.rand_conv": {"RandConv": None}, "utils.parser": {"load_config": None}}
    for name, attrs in stubs.items():
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
    import train_ssl
    from models import timesformer
    from utils import utils
    from vision_transformer import DINOHead

    torch.Tensor.cuda = lambda self, *a, **k: self  # CPU run
    torch.cuda.synchronize = lambda *a, **k: None
    utils.MetricLogger.synchronize_between_processes = lambda self: None
    return types.SimpleNamespace(train_ssl=train_ssl, timesformer=timesformer, utils=utils,
                                 DINOHead=DINOHead)


def init_single_process_group() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)


def build_encoder(rel: types.SimpleNamespace) -> nn.Module:
    t = TINY
    backbone = rel.timesformer.VisionTransformer(
        img_size=t["img_size"], patch_size=t["patch_size"], embed_dim=t["embed_dim"],
        depth=t["depth"], num_heads=t["num_heads"], mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6), drop_rate=0.0, attn_drop_rate=0.0,
        drop_path_rate=0.0, num_frames=t["num_frames"], attention_type="divided_space_time")
    backbone.head = None  # as get_vit_base_patch16_224(no_head=True)
    head = rel.DINOHead(t["embed_dim"], t["out_dim"], use_bn=False, norm_last_layer=True,
                        hidden_dim=t["hidden_dim"], bottleneck_dim=t["bottleneck_dim"])
    return rel.utils.MultiCropWrapper(backbone, head, vary_fr=True)


def perturb(encoder: nn.Module, gen: torch.Generator) -> None:
    """Move every tensor (but the frozen weight norm) off its init so each one gets gradients
    and weight decay shows (zero ``time_embed``, zero ``temporal_fc`` after block 0, ...)."""
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if not name.endswith("weight_g"):
                p.add_(0.02 * torch.randn(p.shape, generator=gen))


def make_views(gen: torch.Generator) -> list[torch.Tensor]:
    """2 global views ``[B, 3, T, 48, 48]`` then 8 local ``[B, 3, T, 32, 32]``."""
    size = TINY["img_size"]
    views = [torch.randn(BATCH, 3, t, size, size, generator=gen) for t in GLOBAL_FRAMES]
    views += [torch.randn(BATCH, 3, t, LOCAL_SIZE, LOCAL_SIZE, generator=gen)
              for t in LOCAL_FRAMES]
    return views


def recording_clip(rel: types.SimpleNamespace, clipped: list[int]):
    original = rel.utils.clip_gradients

    def clip(model: nn.Module, value: float) -> list[float]:
        norms = original(model, value)
        clipped.append(sum(n > value for n in norms))
        return norms

    return clip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("release", type=Path, help="a checkout of med-air/Endo-FM")
    parser.add_argument("--out", type=Path, default=Path("tests/assets/release_step"))
    args = parser.parse_args()
    rel = import_release(args.release.resolve())
    init_single_process_group()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    student, teacher = build_encoder(rel), build_encoder(rel)
    perturb(student, gen)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    views = make_views(gen)
    out = {f"views.{i}": v for i, v in enumerate(views)}
    out |= {f"initial.{k}": v.clone() for k, v in student.state_dict().items()}

    student = nn.parallel.DistributedDataParallel(student)
    loss = rel.train_ssl.DINOLoss(TINY["out_dim"], len(views), TEACHER_TEMP, TEACHER_TEMP, 0,
                                  STEPS)
    optimizer = torch.optim.AdamW(rel.utils.get_params_groups(student))
    schedules = {name: rel.utils.cosine_scheduler(base, final, STEPS, 1, warmup_epochs=warm,
                                                  start_warmup_value=start)
                 for name, (base, final, warm, start) in SCHEDULES.items()}
    clipped: list[int] = []
    rel.utils.clip_gradients = recording_clip(rel, clipped)
    run_args = argparse.Namespace(epochs=STEPS, clip_grad=CLIP_GRAD, freeze_last_layer=1)
    cfg = types.SimpleNamespace(MODEL=types.SimpleNamespace(TWO_STREAM=False, TWO_TOKEN=False))
    losses = []
    for step in range(STEPS):  # one iteration per epoch: it == epoch == step
        stats = rel.train_ssl.train_one_epoch(
            student, teacher, teacher, loss, [(views, None, None, {})], optimizer,
            schedules["lr"], schedules["wd"], schedules["momentum"], step, None, run_args,
            cfg=cfg)
        losses.append(stats["loss"])
        out |= {f"step{step}.student.{k}": v.clone() for k, v in
                student.module.state_dict().items()}
        out |= {f"step{step}.teacher.{k}": v.clone() for k, v in teacher.state_dict().items()}
        out[f"step{step}.center"] = loss.center.clone()

    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, args.out / "release_step.safetensors")
    meta = {"model": TINY, "batch_size": BATCH, "global_frames": GLOBAL_FRAMES,
            "local_frames": LOCAL_FRAMES, "local_size": LOCAL_SIZE, "steps": STEPS,
            "clip_grad": CLIP_GRAD, "teacher_temp": TEACHER_TEMP, "student_temp": 0.1,
            "center_momentum": 0.9, "freeze_last_layer_steps": 1, "seed": SEED,
            "schedules": {k: v.tolist() for k, v in schedules.items()},
            "losses": losses, "tensors_clipped_per_step": [int(c) for c in clipped],
            "torch": torch.__version__}
    (args.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(json.dumps({k: meta[k] for k in ("losses", "tensors_clipped_per_step")}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
