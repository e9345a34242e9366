"""Seconds per pre-training step and peak memory of the release recipe at batch 1: ViT-B/16
student on 2 global (224 px; 8 and 16 frames) + 8 local views (96 px; 2–16 frames), EMA teacher
on the global views, DINO head with 65536 outputs, AdamW.

Rows: the explicit-attention, no-checkpointing baseline (the released code's form) and endofm's
SDPA attention in fp32 / bf16, with and without activation checkpointing.

    python benchmarks/pretrain_step.py [--device auto] [--repeats 2] [--quick]

``--quick`` runs only fp32 and bf16 without checkpointing beside the baseline. Peak memory as in
benchmarks/backbone.py (allocator high-water mark on CUDA, resident set on Linux CPUs).
"""

from __future__ import annotations

import argparse

import torch
from backbone import _load, peak_memory_mib, timed

import endofm
from endofm.ssl import DINOHead, Encoder, SSLMetaArch, STLoss
from endofm.utils.device import autocast, make_grad_scaler, resolve_device

GLOBAL = [(8, 224), (16, 224)]
LOCAL = [(t, 96) for t in (2, 2, 4, 4, 8, 8, 16, 16)]


def make_step(device: torch.device, precision: str, explicit: bool, checkpointing: bool):
    torch.manual_seed(0)
    backbone = endofm.create_model("endofm_vit_base_patch16", grad_checkpointing=checkpointing)
    backbone.set_explicit_attention(explicit)
    meta = SSLMetaArch(Encoder(backbone, DINOHead(768))).to(device)
    meta.teacher.backbone.set_explicit_attention(explicit)
    criterion = STLoss(65536).to(device)
    optimizer = torch.optim.AdamW(meta.student.parameters(), lr=1e-5)
    scaler = make_grad_scaler(device, precision)
    views = [torch.randn(1, 3, t, s, s, device=device) for t, s in GLOBAL + LOCAL]

    def step() -> None:
        with autocast(device, precision):
            student, teacher = meta(views)
        loss = criterion(student, teacher, 0.04)["loss"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        meta.update_teacher(0.996)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = [("explicit attention, fp32 (baseline)", "fp32", True, False),
            ("SDPA, fp32", "fp32", False, False),
            ("SDPA, bf16 autocast", "bf16", False, False)]
    if not args.quick:
        rows += [("SDPA, fp32, checkpointing", "fp32", False, True),
                 ("SDPA, bf16, checkpointing", "bf16", False, True)]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"pre-training step, ViT-B, batch 1, 2 global + 8 local views on {name} "
          f"({torch.get_num_threads()} threads, load {_load()})")
    print(f"{'configuration':40s} {'s/step':>8s} {'peak MiB':>9s}")
    for label, precision, explicit, ckpt in rows:
        step = make_step(device, precision, explicit, ckpt)
        seconds = timed(step, device, warmup=1, repeats=args.repeats)
        peak = peak_memory_mib(step, device)
        peak_s = f"{peak:9.0f}" if peak is not None else f"{'n/a':>9s}"
        print(f"{label:40s} {seconds:8.2f} {peak_s}", flush=True)


if __name__ == "__main__":
    main()
