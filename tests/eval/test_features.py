"""The probes' clip features run on the windowed runner and equal the test views built by hand
(the classification task's ``test_views``)."""

import numpy as np
import pytest
import torch

from endofm.data import VideoError, VideoItem, clips, write_video
from endofm.data.clips import VideoClipsConfig
from endofm.eval.features import embed_videos
from endofm.models import create_model
from tests.tiny_inputs import TINY, moving_frames


@pytest.mark.parametrize("views", [dict(test_clips=2, test_crops=3),
                                   dict(test_protocol="release")])
def test_embeddings_are_the_mean_over_the_hand_built_views(tmp_path, views):
    torch.manual_seed(0)
    backbone = create_model("endofm_vit_tiny_patch16", **TINY).eval()
    items = [VideoItem(write_video(tmp_path / f"{k}.mp4", moving_frames(30 + 9 * k, seed=k),
                                   fps=30), label=k) for k in range(2)]
    cfg = VideoClipsConfig(num_frames=4, frame_step=2, crop_size=32, test_short_side=40,
                           **views)
    feats = embed_videos(backbone, items, cfg, torch.device("cpu"), "fp32")
    with torch.no_grad():
        expected = np.stack([backbone(clips.test_views(it, cfg)).mean(0).numpy() for it in items])
    assert feats.shape == (2, 96)
    np.testing.assert_allclose(feats, expected, atol=1e-5)


def test_an_unreadable_video_is_named(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    backbone = create_model("endofm_vit_tiny_patch16", **TINY).eval()
    with pytest.raises(VideoError, match="bad.mp4"):
        embed_videos(backbone, [VideoItem(bad, 0)], VideoClipsConfig(num_frames=4,
                     crop_size=32, test_short_side=32), torch.device("cpu"))


def test_bf16_on_a_cpu_embeds_with_the_cast_copy_close_to_fp32(tmp_path, monkeypatch):
    """In bf16 on a CPU the probes' embeddings come from the runner's bf16 copy of the backbone
    (bf16 weights, the caller's backbone untouched), within cosine 0.99 of fp32."""
    from endofm.runner import precision

    torch.manual_seed(0)
    backbone = create_model("endofm_vit_tiny_patch16", **TINY).eval()
    items = [VideoItem(write_video(tmp_path / f"{k}.mp4", moving_frames(30, seed=k), fps=30),
                       label=k) for k in range(2)]
    cfg = VideoClipsConfig(num_frames=4, frame_step=2, crop_size=32, test_short_side=40)
    copies = []
    real = precision.inference_module

    def spy(module, device, kind, pack=True):
        copies.append(real(module, device, kind, pack))
        return copies[-1]

    monkeypatch.setattr("endofm.runner.runner.inference_module", spy)
    want = embed_videos(backbone, items, cfg, torch.device("cpu"), "fp32")
    got = embed_videos(backbone, items, cfg, torch.device("cpu"), "bf16")
    assert copies[0] is backbone  # fp32: the backbone itself
    assert {p.dtype for p in copies[1].parameters()} == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in backbone.parameters())
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert got.dtype == np.float32 and cosine.min() > 0.99
