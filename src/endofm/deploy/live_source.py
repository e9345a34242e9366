"""Live frame sources through PyAV: a video file, a capture device (``/dev/video0``) or a
network stream (RTSP, HTTP, …), read frame by frame.

A file is played at its own frame rate when ``realtime`` (each frame is released when its
timestamp is due) or as fast as it decodes; devices and streams run at their own pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from endofm.data import VideoError
from endofm.data.pyav import av

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://",
                   "srt://")
DEVICE_PREFIX = "/dev/video"
OPEN_TIMEOUT_S = 10.0


@dataclass
class SourceFrame:
    """One decoded frame: its index, its time since the first frame (seconds, from the
    stream's timestamps), the RGB image ``uint8 [H, W, 3]`` (at most ``short_side`` on its
    short side) and when it became available (``time.perf_counter()``)."""

    index: int
    time_s: float
    image: np.ndarray
    arrived: float


def is_live(source: str) -> bool:
    """A capture device or a network stream (not a file)."""
    return source.startswith(DEVICE_PREFIX) or source.lower().startswith(NETWORK_SCHEMES)


def open_source(source: str) -> av.container.InputContainer:
    """Open ``source`` with PyAV (a device through v4l2, RTSP over TCP); a failure is a
    :class:`~endofm.data.VideoError` naming it."""
    if not is_live(source) and not Path(source).is_file():
        raise FileNotFoundError(f"video not found: {source}")
    options = {"rtsp_transport": "tcp"} if source.lower().startswith("rtsp") else {}
    try:
        return av.open(source, format="v4l2" if source.startswith(DEVICE_PREFIX) else None,
                       options=options, timeout=OPEN_TIMEOUT_S)
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(source, f"cannot open ({exc})") from exc


def frame_rate(stream: av.video.stream.VideoStream, default: float = 25.0) -> float:
    """The stream's average (else guessed) frame rate, ``default`` when it declares none."""
    rate = stream.average_rate or stream.guessed_rate
    return float(rate) if rate else default


def output_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """``(H', W')`` with the short side scaled down to ``short_side`` (never up)."""
    short = min(height, width)
    if short_side is None or short_side >= short:
        return height, width
    scale = short_side / short
    return max(1, round(height * scale)), max(1, round(width * scale))


class LiveSource:
    """Frames of ``source``, decoded as they come.

    Args:
        source: a video file, ``/dev/videoN`` or a stream URL.
        realtime: release a file's frames at their timestamps (ignored for live sources,
            which pace themselves).
        short_side: downscale while decoding to this short side (never upscales).
    """

    def __init__(self, source: str, realtime: bool = True, short_side: int | None = None
                 ) -> None:
        self.source, self.short_side = source, short_side
        self.live = is_live(source)
        self.realtime = realtime and not self.live
        self.container = open_source(source)
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(source, "no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.fps = frame_rate(self.stream)

    def frames(self, stop: threading.Event) -> Iterator[SourceFrame]:
        """Decoded frames until the source ends or ``stop`` is set."""
        start: tuple[float, float] | None = None
        try:
            for index, frame in enumerate(self.container.decode(self.stream)):
                if stop.is_set():
                    return
                stamp = frame.time if frame.time is not None else index / self.fps
                if start is None:
                    start = (time.perf_counter(), stamp)
                if self.realtime:
                    delay = start[0] + (stamp - start[1]) - time.perf_counter()
                    if delay > 0 and stop.wait(delay):
                        return
                arrived = time.perf_counter()  # decoding, conversion and the model count
                height, width = output_size(frame.height, frame.width, self.short_side)
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
                yield SourceFrame(index, stamp - start[1], image, arrived)
        except av.FFmpegError as exc:
            raise VideoError(self.source, f"decoding failed ({exc})") from exc

    def close(self) -> None:
        self.container.close()
