"""The built-in synthetic sample data: layouts, determinism, exact masks and boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endofm.data import open_video, read_cvc, read_kumc, read_polypdiag
from endofm.data import synth as synth_module
from endofm.data.synth import SCALES, synth_cvc, synthesize
from endofm.data.synth_render import (
    ADENOMATOUS,
    HYPERPLASTIC,
    mask_box,
    polyp_geometry,
    random_camera,
    random_scene,
    render_frame,
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_same_files_other_seed_differs(tmp_path: Path) -> None:
    first = _files(synthesize(tmp_path / "a", seed=3, scale="tiny")["root"])
    again = _files(synthesize(tmp_path / "b", seed=3, scale="tiny")["root"])
    other = _files(synthesize(tmp_path / "c", seed=4, scale="tiny")["root"])
    assert first.keys() == again.keys() == other.keys()
    assert first == again  # the videos' H.264 bytes included
    for suffix in (".tif", ".jpg", ".xml", ".mp4"):
        assert any(first[k] != other[k] for k in first if k.endswith(suffix))


def test_sample_data_is_reproducible_per_part(sample_data: dict[str, Path],
                                              tmp_path: Path) -> None:
    synth_cvc(tmp_path, 0, SCALES["small"])
    assert _files(tmp_path / "cvc") == _files(sample_data["cvc"])


def test_layouts_and_sizes(sample_data: dict[str, Path]) -> None:
    small = SCALES["small"]
    train = read_polypdiag(sample_data["polypdiag"], "train")
    val = read_polypdiag(sample_data["polypdiag"], "val")
    assert (len(train), len(val)) == (small.polypdiag_train, small.polypdiag_val)
    assert sorted({item.label for item in train}) == [0, 1]
    video = open_video(val[0].path)
    assert (video.num_frames, video.height, video.fps) == (small.polypdiag_frames,
                                                          small.polypdiag_size, 30.0)
    pretrain = sorted(sample_data["videos"].rglob("*.mp4"))
    assert len(pretrain) == 2 * small.pretrain_videos_per_source
    assert open_video(pretrain[0]).num_frames == round(small.pretrain_seconds * small.fps)
    cvc_train, cvc_test = (read_cvc(sample_data["cvc"], s) for s in ("train", "test"))
    assert (len(cvc_train), len(cvc_test)) == (small.cvc_train, small.cvc_test)
    firsts = [int(seq.frames[0].stem) for seq in cvc_train + cvc_test]
    assert firsts[0] == 1
    kumc = {s: read_kumc(sample_data["kumc"], s) for s in ("train", "val", "test")}
    assert tuple(len(v) for v in kumc.values()) == small.kumc_videos
    boxes_per_frame = [len(f.boxes) for v in kumc["train"] for f in v.frames]
    assert 0 in boxes_per_frame and max(boxes_per_frame) == 1
    train_labels = {int(f.labels[0]) for v in kumc["train"] for f in v.frames if len(f.labels)}
    assert train_labels == {ADENOMATOUS, HYPERPLASTIC}


def test_cvc_masks_are_binary_and_cover_the_polyp(sample_data: dict[str, Path]) -> None:
    sequence = read_cvc(sample_data["cvc"], "train")[0]
    mask = np.asarray(Image.open(sequence.masks[0]))
    frame = np.asarray(Image.open(sequence.frames[0]))
    assert set(np.unique(mask)) == {0, 255}
    assert mask.shape == frame.shape[:2] == SCALES["small"].cvc_size
    assert 0.02 < (mask == 255).mean() < 0.6


def test_kumc_boxes_are_the_mask_bounding_boxes(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    masks_seen: list[list[np.ndarray]] = []

    def recording_render(*args: object, **kwargs: object):
        frame, masks, labels = render_frame(*args, **kwargs)
        masks_seen.append(masks)
        return frame, masks, labels

    monkeypatch.setattr(synth_module, "render_frame", recording_render)
    synth_module.synth_kumc(tmp_path, 0, SCALES["tiny"])
    frames = [f for split in ("train", "val", "test")
              for video in read_kumc(tmp_path / "kumc", split) for f in video.frames]
    assert len(frames) == len(masks_seen) == 3 * SCALES["tiny"].kumc_frames
    for frame, masks in zip(frames, masks_seen, strict=True):
        expected = np.array([mask_box(m) for m in masks], dtype=np.float32).reshape(-1, 4)
        np.testing.assert_array_equal(frame.boxes, expected)


def test_mask_box_is_tight() -> None:
    mask = np.zeros((10, 12), dtype=bool)
    mask[2:5, 3:9] = True
    assert mask_box(mask) == (3, 2, 9, 5)


def test_mask_is_exactly_the_polyp_outline() -> None:
    rng = np.random.default_rng(0)
    scene = random_scene(rng, [HYPERPLASTIC], 64)
    camera = random_camera(rng, 2, 64)
    _, masks, labels = render_frame(scene, camera, 0, 64, 64)
    assert labels == [HYPERPLASTIC]
    assert masks[0].sum() > 100
    _, no_masks, no_labels = render_frame(scene, camera, 0, 64, 64, show_polyps=False)
    assert no_masks == [] and no_labels == []
    xs = np.arange(64, dtype=np.float32) - 31.5
    px, py = np.meshgrid(xs, xs, indexing="xy")
    cos, sin, zoom = np.cos(camera.angle[0]), np.sin(camera.angle[0]), camera.zoom[0]
    wx = (cos * px - sin * py) / zoom + camera.tx[0]
    wy = (sin * px + cos * py) / zoom + camera.ty[0]
    inside, *_ = polyp_geometry(scene.polyps[0], wx, wy)
    np.testing.assert_array_equal(masks[0], inside)


def test_polyp_classes_look_different() -> None:
    rng = np.random.default_rng(1)
    redness = {}
    for label in (ADENOMATOUS, HYPERPLASTIC):
        scene = random_scene(rng, [label], 96)
        frame, masks, _ = render_frame(scene, random_camera(rng, 1, 96), 0, 96, 96)
        pixels = frame[masks[0]].astype(np.float32)
        redness[label] = float((pixels[:, 0] - pixels[:, 1]).mean())
    assert redness[ADENOMATOUS] > redness[HYPERPLASTIC] + 40


def test_unknown_scale_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown synth scale"):
        synthesize(tmp_path, scale="huge")
