"""PretrainClipDataset: views from videos and frame folders, windows, skips, source weights."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from endofm.data import (
    ClipItem,
    PretrainClipDataset,
    PretrainViews,
    PretrainViewsConfig,
    VideoError,
    collate_views,
)
from endofm.data.pretrain_dataset import Skip
from endofm.data.video import write_video

CFG = PretrainViewsConfig(global_size=32, local_size=16)


def frames(n: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    write_video(root / "good.mp4", frames(40), fps=30)
    write_video(root / "short.mp4", frames(6), fps=30)
    (root / "broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    folder = root / "seq"
    folder.mkdir()
    for i, frame in enumerate(frames(20, 32, 40)):
        Image.fromarray(frame).save(folder / f"{i}.jpg")
    return root


def test_views_from_file_and_frame_folder(data):
    torch.manual_seed(0)
    ds = PretrainClipDataset([data / "good.mp4", data / "seq"], PretrainViews(CFG))
    for sample in (ds[0], ds[1]):
        assert len(sample) == 10
        assert sample[0].shape == (3, 8, 32, 32) and sample[9].shape == (3, 16, 16, 16)
    loader = DataLoader(ds, batch_size=2, collate_fn=collate_views)
    assert next(iter(loader))[1].shape == (2, 3, 16, 32, 32)


def test_decodes_only_the_needed_frames_of_the_window(data, monkeypatch):
    torch.manual_seed(0)
    ds = PretrainClipDataset([ClipItem(data / "good.mp4", 0.5, 1.2)], PretrainViews(CFG))
    video = ds._videos[0]
    requested = []
    original = type(video).read

    def spy(self, indices, short_side=None):
        requested.append(list(indices))
        return original(self, indices, short_side)

    monkeypatch.setattr(type(video), "read", spy)
    ds[0]
    (indices,) = requested
    assert min(indices) >= 15 and max(indices) < 36
    assert len(set(indices)) == len(indices) < 21


def test_decode_short_side(data):
    cfg = PretrainViewsConfig(global_size=32, local_size=16, decode_short_side=24)
    ds = PretrainClipDataset([data / "good.mp4"], PretrainViews(cfg))
    plans_h, plans_w = ds._videos[0].output_size(24)
    assert (plans_h, plans_w) == (24, 32)
    assert ds[0][0].shape == (3, 8, 32, 32)


def test_bad_videos_raise_naming_the_file(data):
    for name in ("broken.mp4", "short.mp4", "missing.mp4"):
        with pytest.raises(VideoError, match=name):
            PretrainClipDataset([data / name], PretrainViews(CFG))


def test_skip_counts_and_reports(data):
    items = [data / "broken.mp4", data / "good.mp4", data / "short.mp4", data / "missing.mp4"]
    ds = PretrainClipDataset(items, PretrainViews(CFG), on_error="skip")
    assert len(ds) == 1 and ds.items[0].path == data / "good.mp4"
    report = ds.report()
    assert report["num_skipped"] == 3
    assert [s["path"] for s in report["skipped"]] == [str(p) for p in items if p.name != "good.mp4"]
    assert "min_window_frames" in report["skipped"][1]["reason"]
    with pytest.raises(ValueError) as err:
        PretrainClipDataset([*items[:1], *items[2:]] * 2, PretrainViews(CFG), on_error="skip")
    reasons = [f"{s['path']}: {s['reason']}" for s in ds.skipped]
    assert str(err.value) == (f"no usable videos (6 skipped: {reasons[0]}; {reasons[1]}; "
                              f"{reasons[2]}; … and 3 more)")


def test_failure_while_loading_is_skipped_not_substituted(data, tmp_path):
    path = tmp_path / "vanishing.mp4"
    path.write_bytes((data / "good.mp4").read_bytes())
    ds = PretrainClipDataset([path], PretrainViews(CFG), on_error="skip", probe=False)
    path.unlink()
    with pytest.warns(RuntimeWarning, match="vanishing.mp4"):
        skip = ds[0]
    assert isinstance(skip, Skip) and skip.path == str(path) and skip.reason
    assert pickle.loads(pickle.dumps(skip)) == skip  # travels from loader workers
    ds.on_error = "raise"
    with pytest.raises(VideoError, match="vanishing.mp4"):
        ds[0]


def test_source_weights(data):
    items = [ClipItem(data / "good.mp4", source="a"), ClipItem(data / "good.mp4", source="a"),
             ClipItem(data / "good.mp4", source="b")]
    ds = PretrainClipDataset(items, PretrainViews(CFG), probe=False)
    weights = ds.sample_weights({"a": 1.0, "b": 3.0})
    assert weights.tolist() == [0.5, 0.5, 3.0]
    with pytest.raises(ValueError, match="unknown sources"):
        ds.sample_weights({"c": 1.0})


def test_keep_decoded_gives_the_same_views_without_decoding_again(data, tmp_path, monkeypatch):
    cfg = PretrainViewsConfig(global_size=32, local_size=16, decode_short_side=24)
    items = [ClipItem(data / "good.mp4", 0.0, 1.0), ClipItem(data / "good.mp4", 0.3, 1.3)]
    lazy = PretrainClipDataset(items, PretrainViews(cfg))
    kept = PretrainClipDataset(items, PretrainViews(cfg), keep_decoded=True)
    assert kept.decoded_bytes == 40 * 24 * 32 * 3  # the shared video counted once
    assert kept._videos[0] is kept._videos[1]
    for index in (0, 1):
        torch.manual_seed(index)
        expected = lazy[index]
        torch.manual_seed(index)
        got = kept[index]
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(type(kept._videos[0].source), "read", no_decoding)
    kept[0]


def test_keep_decoded_reports_a_video_that_fails_to_decode(data, tmp_path, monkeypatch):
    from endofm.data.video import FileVideo

    original = FileVideo.read

    def failing(self, indices, short_side=None):
        if self.path.name == "bad.mp4":
            raise VideoError(self.path, "corrupt video data")
        return original(self, indices, short_side)

    (tmp_path / "bad.mp4").write_bytes((data / "good.mp4").read_bytes())
    monkeypatch.setattr(FileVideo, "read", failing)
    items = [tmp_path / "bad.mp4", data / "good.mp4"]
    ds = PretrainClipDataset(items, PretrainViews(CFG), on_error="skip", keep_decoded=True)
    assert len(ds) == 1 and ds.report()["skipped"] == [
        {"path": str(tmp_path / "bad.mp4"), "reason": "corrupt video data"}]
    with pytest.raises(VideoError, match="bad.mp4"):
        PretrainClipDataset(items, PretrainViews(CFG), keep_decoded=True)
