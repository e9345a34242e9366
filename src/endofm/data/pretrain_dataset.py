"""``PretrainClipDataset``: manifest items → a random window of frames → the pre-training views.

Each item is opened once at construction (``probe=True``) so broken, missing and too-short
videos are found before training: with ``on_error="raise"`` the first one raises a
:class:`VideoError` naming the file; with ``on_error="skip"`` it is left out and recorded in
``skipped`` (``{"path", "reason"}`` dicts). A video that fails later, while decoding a window
(possibly in a loader worker), raises, or the sample is a picklable :class:`Skip` record that
travels through the loader to the training loop, which reports it (and gathers every rank's
records at the end). A failed video is never replaced by another one.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from endofm.data.manifest import ClipItem
from endofm.data.sampling import random_window
from endofm.data.transforms import to_clip
from endofm.data.video import (
    DecodedVideo,
    VideoError,
    VideoSource,
    check_folder_fps,
    open_video,
)
from endofm.data.views import PretrainViews, needed_frames
from endofm.utils.text import short_list


@dataclass(frozen=True)
class Skip:
    """A sample that could not be decoded: the file and the problem."""

    path: str
    reason: str


class PretrainClipDataset(Dataset):
    """Pre-training samples: each ``__getitem__`` returns the list of views of one clip.

    Args:
        items: manifest rows, or plain paths (whole videos).
        views: the view recipe.
        on_error: ``"raise"`` or ``"skip"`` (probe failures listed in ``skipped``; load
            failures returned as :class:`Skip` records).
        folder_fps: frame rate of frame-folder sources.
        probe: open every video now (find broken files early); otherwise lazily.
        keep_decoded: decode every video once now, at ``views.cfg.decode_short_side``, and keep
            its frames in memory (``decoded_bytes``; shared with forked loader workers): for
            small datasets, where decoding would otherwise cost most of a step. A video that
            fails to decode is handled as a probe failure.
    """

    def __init__(self, items: Sequence[ClipItem | str | Path], views: PretrainViews,
                 on_error: str = "raise", folder_fps: float = 30.0, probe: bool = True,
                 keep_decoded: bool = False) -> None:
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        check_folder_fps(folder_fps)
        self.views = views
        self.on_error = on_error
        self.folder_fps = folder_fps
        self.skipped: list[dict[str, str]] = []
        self.items: list[ClipItem] = []
        self._videos: list[VideoSource | None] = []
        opened = probe or keep_decoded
        decoded: dict[Path, DecodedVideo] | None = {} if keep_decoded else None
        for item in items:
            item = item if isinstance(item, ClipItem) else ClipItem(path=Path(item))
            video = self._probe(item, decoded) if opened else None
            if opened and video is None:
                continue
            self.items.append(item)
            self._videos.append(video)
        if not self.items:
            reasons = [f"{s['path']}: {s['reason']}" for s in self.skipped]
            raise ValueError(f"no usable videos ({len(self.skipped)} skipped: "
                             f"{short_list(reasons, limit=3, sep='; ')})")

    @property
    def decoded_bytes(self) -> int:
        """Memory held by videos kept decoded (``keep_decoded``), each counted once."""
        kept = {id(v): v.nbytes for v in self._videos if isinstance(v, DecodedVideo)}
        return sum(kept.values())

    def __len__(self) -> int:
        return len(self.items)

    def _probe(self, item: ClipItem, decoded: dict[Path, DecodedVideo] | None
               ) -> VideoSource | None:
        """``item``'s opened (with ``decoded``: decoded, shared by path) video, or ``None`` when
        it fails and is skipped."""
        try:
            video = decoded.get(item.path) if decoded is not None else None
            if video is None:
                video = open_video(item.path, item.fps or self.folder_fps)
            self._frame_range(video, item)
            if decoded is not None and not isinstance(video, DecodedVideo):
                video = decoded[item.path] = DecodedVideo(video,
                                                          self.views.cfg.decode_short_side)
            return video
        except VideoError as error:
            if self.on_error == "raise":
                raise
            self.skipped.append({"path": str(error.path), "reason": error.reason})
            return None

    def _frame_range(self, video: VideoSource, item: ClipItem) -> tuple[int, int]:
        """``[first, stop)`` frames of ``item``; raises VideoError if too short or out of range."""
        first, stop = 0, video.num_frames
        if item.start is not None and item.end is not None:
            first = round(item.start * video.fps)
            stop = min(round(item.end * video.fps), video.num_frames)
            if first >= video.num_frames:
                raise VideoError(item.path, f"start {item.start}s is past the end of the video "
                                 f"({video.num_frames / video.fps:.2f}s)")
        minimum = self.views.cfg.min_window_frames
        if stop - first < minimum:
            raise VideoError(item.path, f"clip has {stop - first} frames, fewer than "
                             f"min_window_frames={minimum}")
        return first, stop

    def load(self, index: int) -> list[torch.Tensor]:
        """The views of item ``index``; raises :class:`VideoError` on a bad video."""
        item = self.items[index]
        video = self._videos[index] or open_video(item.path, self.folder_fps)
        first, stop = self._frame_range(video, item)
        window = first + random_window(stop - first, self.views.window_length(video.fps))
        short_side = self.views.cfg.decode_short_side
        height, width = video.output_size(short_side)
        plans = self.views.plan(len(window), height, width)
        positions = needed_frames(plans)
        frames = video.read(window[positions], short_side=short_side)
        return self.views.render(to_clip(frames), positions, plans)

    def __getitem__(self, index: int) -> list[torch.Tensor] | Skip:
        try:
            return self.load(index)
        except VideoError as error:
            if self.on_error == "raise":
                raise
            warnings.warn(f"skipped {error}", RuntimeWarning, stacklevel=2)
            return Skip(str(error.path), error.reason)

    def sample_weights(self, source_weights: Mapping[str, float]) -> torch.Tensor:
        """Per-item weights (float64 [N]) for ``WeightedRandomSampler`` so that each source is
        drawn in proportion to ``source_weights[source]`` (1.0 for unlisted sources), however
        many clips it has."""
        sources = [it.source or "" for it in self.items]
        counts = Counter(sources)
        unknown = set(source_weights) - set(counts)
        if unknown:
            raise ValueError(f"source_weights names unknown sources {sorted(unknown)}; "
                             f"sources: {sorted(counts)}")
        weights = [source_weights.get(s, 1.0) / counts[s] for s in sources]
        return torch.tensor(np.asarray(weights, dtype=np.float64))

    def report(self) -> dict:
        """``{"num_items", "num_skipped", "skipped"}`` (the files left out when probing)."""
        return {"num_items": len(self.items), "num_skipped": len(self.skipped),
                "skipped": list(self.skipped)}
