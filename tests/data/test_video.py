"""Decoding: metadata, seeking correctness, frame folders, and every bad-input case."""

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from endofm.data import VideoError, open_video
from endofm.data.video import write_video


def pattern_frames(n: int, height: int = 48, width: int = 64) -> np.ndarray:
    """uint8 [n, H, W, 3]: frame i shows the bits of i as 6 black/white 8x8 blocks on row 0-7."""
    frames = np.full((n, height, width, 3), 64, np.uint8)
    for i in range(n):
        for bit in range(6):
            frames[i, :8, 8 * bit: 8 * bit + 8] = 255 if (i >> bit) & 1 else 0
    return frames


def frame_numbers(frames: np.ndarray) -> list[int]:
    """Read back the numbers written by :func:`pattern_frames`."""
    bits = frames[:, 4, 4:48:8, 0] > 128
    return [int(sum(int(b) << k for k, b in enumerate(row))) for row in bits]


def sequential_decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module", params=["libx264", "mpeg4"])
def video_file(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / f"clip_{request.param}.mp4"
    return write_video(path, pattern_frames(40), fps=25, codec=request.param, gop_size=8)


def test_metadata(video_file):
    video = open_video(video_file)
    assert (video.fps, video.num_frames, video.height, video.width) == (25.0, 40, 48, 64)


def test_seek_matches_sequential_decode(video_file):
    reference = sequential_decode(video_file)
    video = open_video(video_file)
    for indices in ([0], [39], [17, 3, 17, 25], [30, 31, 32, 33], list(range(40))):
        np.testing.assert_array_equal(video.read(indices), reference[indices])


class CountingContainer:
    """Wraps a PyAV input container and counts the frames it decodes."""

    decoded = 0

    def __init__(self, container):
        self._container = container

    def __getattr__(self, name):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._container.close()

    def decode(self, *args, **kwargs):
        for frame in self._container.decode(*args, **kwargs):
            CountingContainer.decoded += 1
            yield frame


def test_read_decodes_from_the_keyframe_not_the_whole_file(video_file, monkeypatch):
    import endofm.data.video as video_module

    video = open_video(video_file)
    opener = video_module.av.open
    monkeypatch.setattr(video_module.av, "open", lambda *a, **k: CountingContainer(opener(*a, **k)))
    CountingContainer.decoded = 0
    assert frame_numbers(video.read([35])) == [35]
    assert 1 <= CountingContainer.decoded <= 8 + 4


def test_decoded_frame_is_the_encoded_frame(video_file):
    wanted = [5, 33, 0, 39, 12, 12]
    assert frame_numbers(open_video(video_file).read(wanted)) == wanted


def test_short_side_decoding(video_file):
    video = open_video(video_file)
    assert video.read([0, 1], short_side=24).shape == (2, 24, 32, 3)
    assert video.read([0], short_side=100).shape == (1, 48, 64, 3)


def test_frame_folder_numeric_order_and_fps(tmp_path):
    frames = pattern_frames(12, 32, 40)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"img_{i + 1}.png")
    video = open_video(tmp_path, folder_fps=10)
    assert (video.fps, video.num_frames, video.height, video.width) == (10.0, 12, 32, 40)
    np.testing.assert_array_equal(video.read([9, 1, 11]), frames[[9, 1, 11]])
    assert video.read([2], short_side=16).shape == (1, 16, 20, 3)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "empty_dir"])
def test_bad_files_name_the_file(tmp_path, case):
    path = tmp_path / "bad.mp4"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a video\n" * 50)
    elif case == "truncated":
        write_video(tmp_path / "good.mp4", pattern_frames(30), fps=25)
        path.write_bytes((tmp_path / "good.mp4").read_bytes()[:2000])
    elif case == "empty_dir":
        path = tmp_path / "frames"
        path.mkdir()
    with pytest.raises(VideoError) as info:
        open_video(path)
    assert str(path) in str(info.value)


def test_out_of_range_and_empty_requests(video_file):
    video = open_video(video_file)
    with pytest.raises(VideoError, match="out of range"):
        video.read([40])
    with pytest.raises(VideoError, match="out of range"):
        video.read([-1])
    with pytest.raises(VideoError, match="no frame indices"):
        video.read([])


def test_frame_folder_bad_frames(tmp_path):
    Image.fromarray(pattern_frames(1, 32, 40)[0]).save(tmp_path / "1.png")
    Image.fromarray(pattern_frames(1, 16, 40)[0]).save(tmp_path / "2.png")
    (tmp_path / "3.png").write_bytes(b"not a png")
    video = open_video(tmp_path)
    with pytest.raises(VideoError, match="differs"):
        video.read([1])
    with pytest.raises(VideoError, match="3.png"):
        video.read([2])


def test_truncated_stream_raises_on_the_missing_frames(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (60, 48, 64, 3), dtype=np.uint8)
    data = write_video(tmp_path / "full.mkv", noise, fps=24).read_bytes()
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    video = open_video(path)
    assert video.num_frames == 60 and video.read([1]).shape == (1, 48, 64, 3)
    with pytest.raises(VideoError, match="cut.mkv: frame 59 could not be decoded"):
        video.read([59])


def test_timestamp_gap_is_served_by_the_next_frame(tmp_path):
    """A variable-frame-rate stream with pts 10 missing: index 10 gets the frame shown next."""
    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 30)
        for number, frame in enumerate(pattern_frames(30)):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = number if number < 10 else number + 1
            video_frame.time_base = Fraction(1, 30)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    video = open_video(path)
    assert frame_numbers(video.read([9, 10, 11, 12, 29])) == [9, 10, 10, 11, 28]


class _DecodeThreads(torch.utils.data.Dataset):
    """Every item: the decoding thread count a video stream gets where the item is loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        video = open_video(self.path)
        with video._open() as container:
            return video._video_stream(container).codec_context.thread_count


def test_a_dataloader_worker_decodes_on_its_share_of_the_cores(video_file, monkeypatch):
    dataset = _DecodeThreads(video_file)
    assert dataset[0] == 0  # this process: FFmpeg's choice
    for cores, workers, share in [(2, 2, 1), (2, 1, 2), (16, 4, 4), (3, 4, 1)]:
        monkeypatch.setattr(os, "sched_getaffinity", lambda _, n=cores: set(range(n)))
        loader = torch.utils.data.DataLoader(dataset, num_workers=workers, batch_size=None,
                                             multiprocessing_context="fork")
        assert list(loader) == [share, share], (cores, workers)


def test_usable_cores_without_an_affinity_call(monkeypatch):
    """macOS and Windows have no ``os.sched_getaffinity``: all cores count there."""
    from endofm.data.video import usable_cores

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert usable_cores() == 8
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cores() == 1


def test_mask_images_beside_frames_are_not_frames(tmp_path):
    """CholecSeg8k ships frame_N_endo.png with its _mask / _color_mask / _watershed_mask."""
    from endofm.data import scan_videos

    for n in (80, 81, 82):
        Image.new("RGB", (8, 6), (n, 0, 0)).save(tmp_path / f"frame_{n}_endo.png")
        for kind in ("mask", "color_mask", "watershed_mask"):
            Image.new("RGB", (8, 6)).save(tmp_path / f"frame_{n}_endo_{kind}.png")
    video = open_video(tmp_path)
    assert video.num_frames == 3
    assert [f.name for f in video.files] == [f"frame_{n}_endo.png" for n in (80, 81, 82)]
    assert scan_videos(tmp_path) == [tmp_path]
    only_masks = tmp_path / "masks"
    only_masks.mkdir()
    Image.new("L", (8, 6)).save(only_masks / "1_mask.png")
    with pytest.raises(VideoError, match="only 1 mask images"):
        open_video(only_masks)
