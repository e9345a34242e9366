from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from endofm.data import VideoError, open_video, write_video
from endofm.data.transforms import KINETICS_MEAN, KINETICS_STD, center_crop, normalize, to_clip
from endofm.inference import FeatureExtractor, VideoEncoder, load_backbone
from endofm.models import create_model
from endofm.utils import device as device_mod
from endofm.utils.device import autocast, resolve_precision
from tests.tiny_inputs import moving_frames

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"


def hand_clip(path: Path, frames: list[int], size: int) -> torch.Tensor:
    """One window built by hand: decode, short side ``size``, centre crop, normalise."""
    video = open_video(path)
    clip = center_crop(to_clip(video.read(frames, short_side=size)), size)
    return normalize(clip, KINETICS_MEAN, KINETICS_STD)[None]


@pytest.mark.parametrize("workers", [0, 2])
def test_features_equal_the_model_on_a_window_built_by_hand(tiny_backbone_dir, videos, workers):
    encoder = VideoEncoder(tiny_backbone_dir, 4, 2, 8, device="cpu", precision="fp32",
                           batch_size=3, num_workers=workers)
    features, windows = encoder.encode(videos / "a.mp4")
    assert features.shape == (7, 96) and len(windows) == 7
    model = load_backbone(tiny_backbone_dir)
    with torch.no_grad():
        for k, frames in [(1, [8, 10, 12, 14]), (6, [48, 49, 49, 49])]:
            assert windows[k].frames.tolist() == frames
            expected = model(hand_clip(videos / "a.mp4", frames, 32))[0].numpy()
            np.testing.assert_allclose(features[k], expected, atol=1e-5, rtol=1e-5)


def test_patch_features_equal_the_tokens_by_hand(tiny_backbone_dir, videos):
    model = load_backbone(tiny_backbone_dir)
    clip = hand_clip(videos / "sub" / "b.mkv", [8, 10, 12, 14], 32)
    with torch.no_grad():
        tokens = model.forward_features(clip)[0, 1:]  # [(h w t), D], t fastest
    grid = tokens.reshape(2, 2, 4, 96).mean(2).permute(2, 0, 1).numpy()
    for kind, expected in [("mean_patch", tokens.mean(0).numpy()), ("patch_grid", grid)]:
        encoder = VideoEncoder(model, 4, 2, 8, features=kind, device="cpu", precision="fp32")
        features, _ = encoder.encode(videos / "sub" / "b.mkv")
        np.testing.assert_allclose(features[1], expected, atol=1e-5, rtol=1e-5)


def test_no_crop_keeps_the_frame_at_patch_multiples(tiny_backbone_dir, videos):
    encoder = VideoEncoder(tiny_backbone_dir, 4, 2, 8, size=32, crop=False,
                           features="patch_grid", device="cpu", precision="fp32")
    features, _ = encoder.encode(videos / "a.mp4")  # 48x64 → 32x42 → 32x32 (16-multiples)
    assert features.shape == (7, 96, 2, 2)
    encoder = VideoEncoder(tiny_backbone_dir, 4, 2, 8, size=48, crop=False,
                           features="patch_grid", device="cpu", precision="fp32")
    assert encoder.encode(videos / "a.mp4")[0].shape == (7, 96, 3, 4)  # whole 48x64 frame


@pytest.mark.parametrize("setting,message", [
    ({"num_frames": 0}, "num_frames must be at least 1, got 0"),
    ({"size": 0}, "size 0 must be a positive multiple of 16"),
    ({"num_workers": -1}, "num_workers must be >= 0"),
])
def test_a_zero_or_negative_setting_is_refused_not_replaced_by_the_default(tiny_backbone_dir,
                                                                          setting, message):
    with pytest.raises(ValueError, match=message):
        VideoEncoder(tiny_backbone_dir, device="cpu", **setting)


def test_encode_raises_naming_the_window_that_fails(tiny_backbone_dir, tmp_path):
    data = write_video(tmp_path / "full.mkv", moving_frames(60), fps=24).read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    encoder = VideoEncoder(tiny_backbone_dir, 4, 1, 4, device="cpu", precision="fp32")
    with pytest.raises(VideoError, match=r"cut.mkv: window \d+"):
        encoder.encode(tmp_path / "cut.mkv")


def test_bf16_features_stay_close_to_fp32_on_the_reference_fixture():
    model = create_model("endofm_vit_tiny_patch16", pretrained=ASSETS / "endo_fm_tiny.pth",
                         num_heads=4, drop_path_rate=0.0).eval()
    inputs = np.load(ASSETS / "inputs.npz")
    cpu = torch.device("cpu")
    for kind in ("cls", "mean_patch", "patch_grid"):
        extractor = FeatureExtractor(model, kind)
        for name in inputs.files:
            x = torch.from_numpy(inputs[name])
            with torch.no_grad():
                ref = extractor(x).flatten(1)
                with autocast(cpu, "bf16"):
                    low = extractor(x).float().flatten(1)
            assert F.cosine_similarity(ref, low).min() >= 0.99, (kind, name)


def test_precision_auto_picks_bf16_only_with_native_support(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(device_mod, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("fp16", cpu) == "fp16"
    with pytest.raises(ValueError):
        resolve_precision("fp8", cpu)
