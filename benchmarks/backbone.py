"""Backbone forward speed and peak memory: ViT-B/16 at T x 224 x 224, fp32 and bf16 autocast,
with SDPA attention (endofm) beside the explicit q kᵀ → softmax → v form of the same math (the
released code's), plus the achieved GFLOP/s against a measured GEMM rate.

    python benchmarks/backbone.py [--device auto] [--frames 8 16] [--repeats 3] [--quick]
        [--precisions fp32 bf16] [--compile] [--ratio-only] [--clock wall|cpu]

FLOPs are counted with ``torch.utils.flop_counter`` on a meta-device copy (2 FLOP per
multiply-add; 392 GFLOP for one 8x224x224 clip). Peak memory is the allocator's high-water
mark on CUDA; on Linux/glibc CPUs the resident-set high-water mark above the pre-forward level
of one extra forward, run with large blocks forced onto mmap (``n/a`` elsewhere). Timings are
medians over ``--repeats`` forwards after ``--warmup``; on a shared machine check the load.

The last table divides each SDPA forward's time by the time of the same linear-layer GEMMs
alone (every ``nn.Linear`` call of that forward, with its input shape, weights and precision,
replayed as bare ``F.linear`` calls in the same run): the bound a forward made only of its
GEMMs would reach. Forwards and GEMM replays are timed alternately (at least 3 pairs) and the
median per-pair ratio is printed, so that a shared host's drifting speed cancels out.
``--clock cpu`` times that table in the process's CPU time instead of wall time (on a host
whose cores other jobs share, with ``OMP_WAIT_POLICY=PASSIVE``).
In bf16 on a CPU the table also has ``eager-cast``: the eager forward of the bf16 copy of the
model that ``endofm extract``/``predict``/``stream`` run there
(:class:`endofm.runner.precision.CastInference`: its linear layers oneDNN calls on prepacked
weights, :mod:`endofm.runner.packed`), ``eager-cast-linear`` the same copy with its
``nn.Linear`` layers, beside ``eager``, autocast re-casting the fp32 weights at every call.
``--compile`` adds ``compiled``: the forward as ``--compile`` compiles it
(:meth:`endofm.runner.WindowRunner.model_call`: inductor with freezing, of the bf16 copy in
bf16 on a CPU), and in bf16 on a CPU ``compiled-autocast``, the fp32 model
compiled under autocast, for comparison.
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
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import endofm
from endofm.runner.compile import maybe_compile
from endofm.runner.precision import casts_weights, inference_module
from endofm.utils.device import autocast, resolve_device

MODEL = "endofm_vit_base_patch16"
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _load() -> str:
    """The 1-minute load average (timings on a shared machine depend on it)."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "n/a"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int,
          clock: Callable[[], float] | None = None) -> float:
    """Median seconds per call of ``fn`` after ``warmup`` untimed calls, on ``clock``
    (default ``time.perf_counter``: wall time)."""
    clock = clock or time.perf_counter
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        synchronize(device)
        times.append(clock() - start)
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
    afterwards the thresholds are set to where glibc's dynamic ones settle for tensor-sized
    blocks (mmap above 32 MiB, heap trimmed above 64 MiB): setting one fixes both, and a trim
    threshold left at its 128 KiB default returns freed activations to the system after every
    op, so that later timings would pay page faults for them.
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
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)


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


def linear_calls(model: nn.Module, x: torch.Tensor, precision: str
                 ) -> list[tuple[torch.Size, nn.Linear]]:
    """``(input shape, layer)`` of every ``nn.Linear`` call in one forward of ``model``."""
    calls: list[tuple[torch.Size, nn.Linear]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append((inp[0].shape, mod)))
             for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        with torch.inference_mode(), autocast(x.device, precision):
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return calls


def gemm_replay(model: nn.Module, x: torch.Tensor, precision: str) -> Callable[[], None]:
    """The forward's linear GEMMs alone (same shapes, weights, dtype) as one callable."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    inputs: dict[torch.Size, torch.Tensor] = {}
    calls = []
    for shape, layer in linear_calls(model, x, precision):
        if shape not in inputs:
            inputs[shape] = torch.randn(shape, device=x.device, dtype=dtype)
        bias = None if layer.bias is None else layer.bias.detach().to(dtype)
        calls.append((inputs[shape], layer.weight.detach().to(dtype), bias))

    def gemms() -> None:
        with torch.inference_mode():
            for a, w, b in calls:
                F.linear(a, w, b)

    return gemms


def interleaved_ratio(forward: Callable[[], object], gemms: Callable[[], object],
                      device: torch.device, warmup: int, repeats: int,
                      clock: Callable[[], float] | None = None
                      ) -> tuple[float, float, float]:
    """Median forward seconds, median GEMM seconds and the median of their per-pair ratios,
    timing the two alternately so that a shared host's drifting speed cancels out."""
    pairs = [(timed(forward, device, warmup if i == 0 else 0, 1, clock),
              timed(gemms, device, warmup if i == 0 else 0, 1, clock)) for i in range(repeats)]
    fwd, gemm = (sorted(p[k] for p in pairs)[repeats // 2] for k in (0, 1))
    ratios = sorted(f / g for f, g in pairs)
    return fwd, gemm, ratios[repeats // 2]


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
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                   help="bf16 is emulated (very slow) on CPUs without AVX512-BF16/AMX")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile'd forwards against their GEMMs")
    p.add_argument("--ratio-only", action="store_true",
                   help="only the forward / GEMM table (no SDPA-vs-explicit timings)")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="what the forward / GEMM table times: wall time, or (CPU only) the "
                        "process's CPU time, which on a host shared with other jobs counts "
                        "the work rather than the waits for a core (set "
                        "OMP_WAIT_POLICY=PASSIVE so that idle threads sleep, not spin)")
    args = p.parse_args()
    if args.clock == "cpu" and resolve_device(args.device).type != "cpu":
        p.error("--clock cpu times the CPU's work: use it with --device cpu")
    return args


def gemm_ratio_rows(model: nn.Module, x: torch.Tensor, precision: str,
                    args: argparse.Namespace) -> list[str]:
    """Rows of forward time / linear-GEMM time for the eager (and compiled) forward."""
    gemms = gemm_replay(model, x, precision)
    clip = f"{x.shape[2]:>3}x{x.shape[3]}x{x.shape[4]}"
    forwards = {"eager": model}
    cast = casts_weights(x.device, precision)
    if cast:
        forwards["eager-cast"] = inference_module(model, x.device, precision)
        forwards["eager-cast-linear"] = inference_module(model, x.device, precision, pack=False)
    if args.compile:
        if cast:
            forwards["compiled-autocast"] = maybe_compile(model, True, x.device, precision)
        forwards["compiled"] = maybe_compile(inference_module(model, x.device, precision,
                                                              pack=False),
                                             True, x.device, precision)
    rows = []
    for name, module in forwards.items():
        def forward(module: nn.Module = module) -> torch.Tensor:
            with torch.inference_mode(), autocast(x.device, precision):
                return module(x)

        fwd, gemm, ratio = interleaved_ratio(forward, gemms, x.device, args.warmup + 1,
                                             max(args.repeats, 3), CLOCKS[args.clock])
        rows.append(f"{clip} {precision:>5} {name:>17} {fwd * 1e3:>9.0f} {gemm * 1e3:>9.0f} "
                    f"{ratio:>6.2f}")
    return rows


def main() -> None:
    args = parse_args()
    if args.quick:
        args.repeats, args.gemm_size = 1, 2048
    device = resolve_device(args.device)
    torch.manual_seed(0)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    peaks = {p: gemm_rate(device, dtypes[p], args.gemm_size, max(args.repeats, 3))
             for p in args.precisions}
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}, load average {_load()}")
    print(f"GEMM {args.gemm_size}^3: " + ", ".join(f"{p} {rate:.1f} GFLOP/s"
                                                     for p, rate in peaks.items()))
    model = endofm.create_model(MODEL, img_size=args.img_size).to(device).eval()
    header = (f"{'clip':>10} {'prec':>5} {'attention':>9} {'ms':>9} {'GFLOP/s':>8} "
              f"{'%GEMM':>6} {'peak MiB':>9}")
    print(header + "\n" + "-" * len(header))
    flops_per_clip: dict[int, int] = {}
    ratios: list[str] = []
    for frames in args.frames:
        flops_per_clip[frames] = forward_flops(frames, args.img_size)
        flops = args.batch * flops_per_clip[frames]
        x = torch.randn(args.batch, 3, frames, args.img_size, args.img_size, device=device)
        for precision in args.precisions:
            if args.ratio_only:
                ratios += gemm_ratio_rows(model, x, precision, args)
                continue
            for explicit in (False, True):
                model.set_explicit_attention(explicit)
                seconds, peak = measure(model, x, precision, args.warmup, args.repeats)
                rate = flops / seconds / 1e9
                print(f"{frames:>3}x{args.img_size}x{args.img_size} {precision:>5} "
                      f"{'explicit' if explicit else 'sdpa':>9} {seconds * 1e3:>9.0f} "
                      f"{rate:>8.0f} {100 * rate / peaks[precision]:>5.0f}% "
                      f"{'n/a' if peak is None else f'{peak:.0f}':>9}")
                if not explicit:
                    ratios += gemm_ratio_rows(model, x, precision, args)
    print(f"\n{'clip':>10} {'prec':>5} {'forward':>17} {'ms':>9} {'GEMMs ms':>9} "
          f"{'ratio':>6}\n" + "-" * 61)
    print("\n".join(ratios))
    print("GFLOP per forward: " + ", ".join(f"{t}x{args.img_size} {f / 1e9:.1f}"
                                             for t, f in flops_per_clip.items()))
    print(f"load average at the end: {_load()}")


if __name__ == "__main__":
    main()
