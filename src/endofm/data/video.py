"""Video sources: a file decoded with PyAV, or a folder of frames, behind one small interface.

``open_video(path)`` returns a :class:`VideoSource` with ``fps``, ``num_frames``, ``height``,
``width`` and ``read(indices) -> uint8 [T, H, W, 3]``. A file is read by seeking to the keyframe
before the first wanted frame and decoding forward only until the last wanted frame, so a clip
costs a few GOPs, not the whole file. Frame indices come from presentation timestamps
(``index = round((pts - start) * time_base * fps)``), exact for constant-frame-rate videos.
Every failure raises :class:`VideoError` naming the file and the problem.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import get_worker_info

from endofm.data.images import is_mask_like, natural_key
from endofm.data.pyav import av

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})


def decode_threads() -> int:
    """FFmpeg decoding threads: in a DataLoader worker, its share of this process's cores
    (``cores // num_workers``, at least 1: frame threads beyond that only compete with the
    other workers and the model, and cost about a fifth more CPU per frame); elsewhere 0
    (FFmpeg's choice, about one per core)."""
    worker = get_worker_info()
    if worker is None:
        return 0
    return max(1, usable_cores() // worker.num_workers)


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one, as on Linux; else
    all of them, e.g. on macOS and Windows)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class VideoError(RuntimeError):
    """A video that cannot be opened or read; ``path`` names it and ``reason`` says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class VideoSource:
    """Common interface of every video source. Frames are uint8 ``[T, H, W, 3]`` RGB."""

    path: Path
    fps: float
    num_frames: int
    height: int
    width: int

    def read(self, indices: Sequence[int], short_side: int | None = None) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``[T, H', W', 3]``.

        ``short_side`` downscales while decoding so that ``min(H', W') == short_side`` (never
        upscales); ``None`` keeps the native size.
        """
        wanted = self._check_indices(indices)
        height, width = self.output_size(short_side)
        frames = self._read_unique(sorted(set(wanted)), height, width)
        return np.stack([frames[i] for i in wanted])

    def output_size(self, short_side: int | None) -> tuple[int, int]:
        """``(H', W')`` that :meth:`read` returns for ``short_side``."""
        short = min(self.height, self.width)
        if short_side is None or short_side >= short:
            return self.height, self.width
        scale = short_side / short
        return max(1, round(self.height * scale)), max(1, round(self.width * scale))

    def _check_indices(self, indices: Sequence[int]) -> list[int]:
        wanted = [int(i) for i in indices]
        if not wanted:
            raise VideoError(self.path, "no frame indices requested")
        bad = [i for i in wanted if not 0 <= i < self.num_frames]
        if bad:
            raise VideoError(
                self.path, f"frame index {bad[0]} out of range (video has {self.num_frames} frames)"
            )
        return wanted

    def _read_unique(self, indices: list[int], height: int, width: int) -> dict[int, np.ndarray]:
        raise NotImplementedError

    def verify(self) -> int:
        """Decode every frame; the number decoded (a damaged source raises
        :class:`VideoError`)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, fps={self.fps:.3f}, "
                f"num_frames={self.num_frames}, size={self.height}x{self.width})")


class FileVideo(VideoSource):
    """A video file decoded with PyAV. The container is reopened per :meth:`read`, so an
    instance is safe to share with DataLoader worker processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.stat().st_size == 0:
            raise VideoError(self.path, "empty file")
        with self._open() as container:
            stream = self._video_stream(container)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            if not rate or rate <= 0:
                raise VideoError(self.path, "no frame rate in the video stream")
            self.fps = float(rate)
            self._rate = Fraction(rate)
            self._time_base = Fraction(stream.time_base)
            self._start_pts = stream.start_time or 0
            first = self._first_frame(container)
            self.height, self.width = first.height, first.width
            self.num_frames = self._count_frames(container, stream)
        if self.num_frames <= 0:
            raise VideoError(self.path, "no decodable frames")

    def verify(self) -> int:
        """Decode every frame; returns how many decoded. A corrupt stream, no frames, or
        fewer frames than the header declares (a truncated file) is a :class:`VideoError`."""
        decoded = 0
        with self._open() as container:
            declared = self._video_stream(container).frames
            try:
                for _ in container.decode(video=0):
                    decoded += 1
            except (av.FFmpegError, UnicodeDecodeError) as exc:
                raise VideoError(self.path, f"corrupt video data after {decoded} frames "
                                 f"({exc})") from exc
        if decoded == 0:
            raise VideoError(self.path, "no decodable frames")
        if declared and decoded < declared:
            raise VideoError(self.path, f"truncated: header declares {declared} frames, "
                             f"only {decoded} decode")
        return decoded

    def _open(self) -> av.container.InputContainer:
        try:
            return av.open(str(self.path), mode="r")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise VideoError(self.path, f"cannot open as a video ({exc})") from exc

    def _video_stream(self, container: av.container.InputContainer) -> av.VideoStream:
        if not container.streams.video:
            raise VideoError(self.path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = decode_threads()
        return stream

    def _first_frame(self, container: av.container.InputContainer) -> av.VideoFrame:
        try:
            for frame in container.decode(video=0):
                return frame
        except av.FFmpegError as exc:
            raise VideoError(self.path, f"corrupt video data ({exc})") from exc
        raise VideoError(self.path, "no decodable frames")

    def _count_frames(self, container: av.container.InputContainer, stream: av.VideoStream) -> int:
        """Frame count from the stream header, else duration x fps, else by demuxing packets."""
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        if stream.duration:
            return int(round(float(stream.duration * self._time_base) * self.fps))
        if container.duration:
            return int(round(container.duration / av.time_base * self.fps))
        container.seek(0)
        return sum(1 for packet in container.demux(video=0) if packet.size > 0)

    def _pts_of(self, index: int) -> int:
        return self._start_pts + int(Fraction(index) / self._rate / self._time_base)

    def _index_of(self, frame: av.VideoFrame) -> int:
        pts = frame.pts if frame.pts is not None else self._start_pts
        return int(round((pts - self._start_pts) * self._time_base * self._rate))

    def _read_unique(self, indices: list[int], height: int, width: int) -> dict[int, np.ndarray]:
        with self._open() as container:
            stream = self._video_stream(container)
            frames, overshot = self._decode_from(container, stream, indices, height, width, True)
            if overshot:
                frames, _ = self._decode_from(container, stream, indices, height, width, False)
        missing = [i for i in indices if i not in frames]
        if missing:
            raise VideoError(
                self.path, f"frame {missing[0]} could not be decoded (truncated or corrupt video)"
            )
        return frames

    def _decode_from(self, container: av.container.InputContainer, stream: av.VideoStream,
                     indices: list[int], height: int, width: int,
                     seek: bool) -> tuple[dict[int, np.ndarray], bool]:
        """Decode forward from the keyframe before ``indices[0]`` (or the start) to the last one.

        A decoded frame with timestamp index ``i`` also serves wanted indices skipped since the
        previous frame (timestamp gaps of variable-frame-rate videos). Returns the frames and
        whether the seek landed after ``indices[0]`` (then nothing is decoded and the caller
        retries from the start of the stream).
        """
        container.seek(self._pts_of(indices[0]) if seek else self._start_pts,
                       backward=True, any_frame=False, stream=stream)
        out: dict[int, np.ndarray] = {}
        previous: int | None = None
        try:
            for frame in container.decode(stream):
                index = self._index_of(frame)
                if previous is None and seek and index > indices[0]:
                    return out, True
                first = index if previous is None else previous + 1
                hits = indices[bisect_left(indices, first):bisect_right(indices, index)]
                if hits:
                    array = frame.to_ndarray(format="rgb24", width=width, height=height)
                    out.update(dict.fromkeys(hits, array))
                previous = index if previous is None else max(previous, index)
                if index >= indices[-1]:
                    break
        except av.FFmpegError as exc:
            raise VideoError(self.path, f"corrupt video data ({exc})") from exc
        return out, False


def check_folder_fps(fps: float) -> None:
    """Frame folders have no frame rate of their own: the one they are played at must be > 0."""
    if fps <= 0:
        raise ValueError(f"folder_fps (frame folders' frame rate) must be > 0, got {fps}")


class FrameFolder(VideoSource):
    """A folder of image files (jpg/png/tif/bmp), ordered by the last number in each name."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        check_folder_fps(fps)
        self.path = Path(path)
        self.fps = float(fps)
        images = [p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        self.files = sorted((p for p in images if not is_mask_like(p)), key=natural_key)
        masks = len(images) - len(self.files)
        if not self.files:
            raise VideoError(self.path, "folder has no image frames (jpg/png/tif/bmp)"
                             + (f", only {masks} mask images (*_mask.*)" if masks else ""))
        if masks:
            logger.info("%s: %d mask images (*_mask.*) beside the frames are not frames",
                        self.path, masks)
        self.num_frames = len(self.files)
        first = self._load(0, None)
        self.height, self.width = first.shape[:2]

    def _load(self, index: int, size: tuple[int, int] | None) -> np.ndarray:
        """Frame ``index`` as uint8 ``[H, W, 3]``, resized to ``size`` = (H, W) if given."""
        file = self.files[index]
        try:
            with Image.open(file) as image:
                image = image.convert("RGB")
                if size is not None and (image.height, image.width) != (self.height, self.width):
                    raise VideoError(file, f"frame size {image.height}x{image.width} differs from "
                                     f"the folder's first frame ({self.height}x{self.width})")
                if size is not None and (image.height, image.width) != size:
                    image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
                return np.asarray(image, dtype=np.uint8)
        except OSError as exc:
            raise VideoError(file, f"unreadable image ({exc})") from exc

    def _read_unique(self, indices: list[int], height: int, width: int) -> dict[int, np.ndarray]:
        return {i: self._load(i, (height, width)) for i in indices}

    def verify(self) -> int:
        """Decode every image; returns the frame count (an unreadable image is a
        :class:`VideoError` naming it)."""
        for index in range(self.num_frames):
            self._load(index, None)
        return self.num_frames


class DecodedVideo(VideoSource):
    """Every frame of another source, decoded once at ``short_side`` and kept in memory as
    uint8 ``[N, H', W', 3]`` (``nbytes`` of them): for small datasets that are read over and
    over, such as the tiny pre-training recipes. Reads at another size go to the source."""

    def __init__(self, source: VideoSource, short_side: int | None) -> None:
        self.source, self.short_side = source, short_side
        self.path, self.fps, self.num_frames = source.path, source.fps, source.num_frames
        self.height, self.width = source.height, source.width
        self.frames = source.read(range(source.num_frames), short_side)

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes

    def read(self, indices: Sequence[int], short_side: int | None = None) -> np.ndarray:
        if short_side != self.short_side:
            return self.source.read(indices, short_side)
        return self.frames[self._check_indices(indices)]

    def verify(self) -> int:
        return self.source.verify()


# libx264's macroblock-tree rate control made the bytes, and the decoded pixels, of the same
# frames differ from one encoding to the next when the frames were rendered between writes
# (PyAV 18.1, "veryfast" and default presets, one thread or many; not with mbtree=0, which
# the "ultrafast" preset and zerolatency tuning imply). Off by default so a render is
# reproducible; ``options={"x264-params": ...}`` replaces it.
X264_REPRODUCIBLE = {"x264-params": "mbtree=0"}


class VideoWriter:
    """Write uint8 ``[H, W, 3]`` frames to a video file (H.264 when available, else MPEG-4).

    Use as a context manager; the file is complete once it closes. Odd sizes are not allowed
    by H.264's 4:2:0 sampling, so ``height`` and ``width`` must be even. With libx264 the same
    frames give the same bytes (:data:`X264_REPRODUCIBLE`).
    """

    def __init__(self, path: str | Path, fps: float, height: int, width: int,
                 codec: str | None = None, gop_size: int | None = None,
                 options: dict[str, str] | None = None) -> None:
        """``options`` are encoder options, e.g. ``{"preset": "ultrafast"}`` for libx264."""
        if height % 2 or width % 2:
            raise ValueError(f"video size must be even, got {height}x{width}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        codec = codec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.height, self._stream.width = height, width
        self._stream.pix_fmt = "yuv420p"
        if gop_size is not None:
            self._stream.codec_context.gop_size = gop_size
        defaults = X264_REPRODUCIBLE if codec == "libx264" else {}
        if defaults or options:
            self._stream.options = defaults | dict(options or {})
        self._next_pts = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 ``[H, W, 3]`` RGB frame."""
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self._next_pts  # explicit timestamps make the encoding reproducible
        self._next_pts += 1
        self._container.mux(self._stream.encode(video_frame))

    def close(self) -> None:
        """Flush the encoder and close the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_video(path: str | Path, frames: np.ndarray, fps: float = 30.0,
                codec: str | None = None, gop_size: int | None = None) -> Path:
    """Write uint8 ``[T, H, W, 3]`` frames to ``path`` (keyframe every ``gop_size`` frames if
    given); returns ``path``."""
    with VideoWriter(path, fps, frames.shape[1], frames.shape[2], codec, gop_size) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def open_video(path: str | Path, folder_fps: float = 30.0) -> VideoSource:
    """Open a video file (PyAV) or a folder of frames (played at ``folder_fps``)."""
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "does not exist")
    if path.is_dir():
        return FrameFolder(path, fps=folder_fps)
    return FileVideo(path)
