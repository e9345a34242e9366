"""Backbone forward speed and peak memory: ViT-B/16 at T x 224 x 224, fp32 and bf16 autocast,
with SDPA attention (endofm) beside the explicit q kᵀ → softmax → v form of the same math (the
released code's), plus the achieved GFLOP/s against a measured GEMM rate.

    python benchmarks/backbone.py [--device auto] [--frames 8 16] [--repeats 3] [--quick]

FLOPs are counted with ``torch.utils.flop_counter`` on a meta-device copy (2 FLOP per
multiply-add; 392 GFLOP for one 8x224x224 clip). Peak memory is the allocator's high-water
mark on CUDA; on Linux/glibc CPUs the resident-set high-water mark above the pre-forward level
of one extra forward, run with large blocks forced onto mmap (``n/a`` elsewhere). Timings are
medians over ``--repeats`` forwards after ``--warmup``; on a shared machine check the load.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import endofm
from endofm.utils.device import autocast, resolve_device

MODEL = "endofm_vit_base_patch16"
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_M_MMAP_THRESHOLD = -3


def _load() -> str:
    """The 1-minute load average (timings on a shared machine depend on it)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _rss_kib(field: str) -> int:
    line = next(s for s in _STATUS.read_text().splitlines() if s.startswith(field + ":"))
    return int(line.split()[1])


def _libc() -> ctypes.CDLL | None:
    """glibc, whose ``mallopt`` lets freed tensor memory leave the resident set; else None."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and _STATUS.exists() else None
    except OSError:
        return None


def _cpu_peak_mib(fn: Callable[[], object]) -> float | None:
    """Resident-set high-water mark of one call of ``fn`` above the level before it (Linux).

    Free heap memory is first returned to the system (``malloc_trim``) and, for the call only,
    blocks of 1 MiB and more are served by mmap, so that every byte the call touches counts;
    afterwards glibc's largest default threshold (32 MiB) is restored so that timings are not
    burdened with page faults.
    """
    libc = _libc()
    if libc is None or not libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20):
        return None
    try:
        libc.malloc_trim(0)
        _CLEAR_REFS.write_text("5")  # reset the resident-set high-water mark
        base = _rss_kib("VmRSS")
        fn()
        return (_rss_kib("VmHWM") - base) / 1024
    except OSError:
        return None
    finally:
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)


def peak_memory_mib(fn: Callable[[], object], device: torch.device) -> float | None:
    """Extra memory one call of ``fn`` needs at its peak, in MiB (``None`` if unmeasurable)."""
    if device.type != "cuda":
        return _cpu_peak_mib(fn)
    synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def gemm_rate(device: torch.device, dtype: torch.dtype, n: int, repeats: int) -> float:
    """Achieved GFLOP/s of an ``n x n`` @ ``n x n`` matmul in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, warmup=1, repeats=repeats)
    return 2 * n**3 / seconds / 1e9


def forward_flops(frames: int, size: int) -> int:
    """FLOPs of one ViT-B forward on a ``[1, 3, frames, size, size]`` clip."""
    with torch.device("meta"):
        model = endofm.create_model(MODEL, num_frames=frames, img_size=size).eval()
        x = torch.empty(1, 3, frames, size, size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def measure(model: torch.nn.Module, x: torch.Tensor, precision: str, warmup: int,
            repeats: int) -> tuple[float, float | None]:
    """Median seconds and peak extra MiB of an inference forward of ``model`` on ``x``."""
    device = x.device

    def forward() -> torch.Tensor:
        with torch.inference_mode(), autocast(device, precision):
            return model(x)

    return timed(forward, device, warmup, repeats), peak_memory_mib(forward, device)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--frames", type=int, nargs="+", default=[8, 16])
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per setting (median)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--gemm-size", type=int, default=4096)
    p.add_argument("--quick", action="store_true",
                   help="one timed forward per setting, a 2048 GEMM")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.quick:
        args.repeats, args.gemm_size = 1, 2048
    device = resolve_device(args.device)
    torch.manual_seed(0)
    peaks = {p: gemm_rate(device, dtype, args.gemm_size, max(args.repeats, 3))
             for p, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, load average {_load()}")
    print(f"GEMM {args.gemm_size}^3: fp32 {peaks['fp32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s")
    model = endofm.create_model(MODEL, img_size=args.img_size).to(device).eval()
    header = (f"{'clip':>10} {'prec':>5} {'attention':>9} {'ms':>9} {'GFLOP/s':>8} "
              f"{'%GEMM':>6} {'peak MiB':>9}")
    print(header + "\n" + "-" * len(header))
    flops_per_clip: dict[int, int] = {}
    for frames in args.frames:
        flops_per_clip[frames] = forward_flops(frames, args.img_size)
        flops = args.batch * flops_per_clip[frames]
        x = torch.randn(args.batch, 3, frames, args.img_size, args.img_size, device=device)
        for precision in ("fp32", "bf16"):
            for explicit in (False, True):
                model.set_explicit_attention(explicit)
                seconds, peak = measure(model, x, precision, args.warmup, args.repeats)
                rate = flops / seconds / 1e9
                print(f"{frames:>3}x{args.img_size}x{args.img_size} {precision:>5} "
                      f"{'explicit' if explicit else 'sdpa':>9} {seconds * 1e3:>9.0f} "
                      f"{rate:>8.0f} {100 * rate / peaks[precision]:>5.0f}% "
                      f"{'n/a' if peak is None else f'{peak:.0f}':>9}")
    print("GFLOP per forward: " + ", ".join(f"{t}x{args.img_size} {f / 1e9:.1f}"
                                             for t, f in flops_per_clip.items()))
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
