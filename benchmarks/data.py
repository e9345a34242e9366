"""Data-pipeline throughput: pre-training samples/s (all 10 views) and downstream clips/s per
worker, for endofm's pipeline beside a naive one (decode the whole video at full size, convert
to float, resize per view).

    python benchmarks/data.py [--height 256 --width 320 --frames 150 --samples 6 --threads 1]

A synthetic H.264 video (the release's clip format: 5 s at 30 fps, short side 256) is written
to a temporary folder. ``--threads 1`` measures one DataLoader worker.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import torch
import torchvision.transforms.v2.functional as F

from endofm.data import PretrainClipDataset, PretrainViews, open_video
from endofm.data import transforms as TF
from endofm.data.sampling import eval_clips
from endofm.data.video import write_video


def make_video(path: Path, frames: int, height: int, width: int) -> Path:
    """A moving textured scene, uint8, written as H.264 at 30 fps."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width * 2, 3), dtype=np.uint8)
    clip = np.stack([np.roll(texture, 2 * t, axis=1)[:, :width] for t in range(frames)])
    return write_video(path, clip, fps=30)


def decode_all_float(path: Path) -> torch.Tensor:
    """Naive: every frame at full size, as float ``[N, 3, H, W]`` in [0, 1]."""
    with av.open(str(path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255)


def naive_pretrain_sample(path: Path, views: PretrainViews) -> list[torch.Tensor]:
    c = views.cfg
    video = decode_all_float(path)
    window = video[: views.window_length(30.0)]
    plans = views.plan(window.shape[0], window.shape[2], window.shape[3])
    out = []
    for plan in plans:
        x = F.resized_crop(window[torch.from_numpy(plan.frames)], *plan.box, [plan.size] * 2,
                           interpolation=TF.interpolation(c.interpolation), antialias=True)
        if plan.flip:
            x = F.horizontal_flip(x)
        if plan.jitter:
            x = TF.color_jitter(x, c.brightness, c.contrast, c.saturation, c.hue)
        if plan.gray:
            x = F.rgb_to_grayscale(x, num_output_channels=3)
        out.append(F.normalize(x, c.mean, c.std).permute(1, 0, 2, 3))
    return out


def endofm_clip(path: Path) -> torch.Tensor:
    video = open_video(path)
    (indices,) = eval_clips(video.num_frames, video.fps, num_frames=8, frame_step=32)
    clip = TF.to_clip(video.read(indices, short_side=256))
    clip = TF.center_crop(TF.short_side_resize(clip, 256), 224)
    return TF.normalize(clip, TF.KINETICS_MEAN, TF.KINETICS_STD)


def naive_clip(path: Path) -> torch.Tensor:
    video = decode_all_float(path)
    (indices,) = eval_clips(video.shape[0], 30.0, num_frames=8, frame_step=32)
    video = F.center_crop(F.resize(video, [256], antialias=True), [224, 224])
    clip = F.normalize(video, list(TF.KINETICS_MEAN), list(TF.KINETICS_STD))
    return clip[torch.from_numpy(indices)].permute(1, 0, 2, 3)


def rate(fn: Callable[[], object], repeats: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--samples", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "clip.mp4", args.frames, args.height, args.width)
        views = PretrainViews()
        dataset = PretrainClipDataset([path], views)
        rows = [
            ("pre-training samples/s (10 views)", rate(lambda: dataset[0], args.samples),
             rate(lambda: naive_pretrain_sample(path, views), args.samples)),
            ("downstream clips/s (8x224)", rate(lambda: endofm_clip(path), args.samples),
             rate(lambda: naive_clip(path), args.samples)),
        ]
    print(f"video {args.frames} frames {args.height}x{args.width} @30fps, "
          f"{args.threads} thread(s), {args.samples} samples")
    print(f"{'':36s} {'endofm':>8s} {'naive':>8s} {'speed-up':>9s}")
    for name, ours, naive in rows:
        print(f"{name:36s} {ours:8.2f} {naive:8.2f} {ours / naive:8.1f}x")


if __name__ == "__main__":
    main()
