import json

import numpy as np
import torch

from endofm.cli.main import main
from endofm.data import open_video
from endofm.inference.attention import cls_patch_attention
from endofm.models import create_model
from tests.tiny_inputs import TINY


def test_maps_sum_to_one_over_the_patches_and_match_the_attention_by_hand():
    torch.manual_seed(0)
    model = create_model("endofm_vit_tiny_patch16", **TINY).eval()
    clips = torch.randn(2, 3, 4, 32, 48)
    maps = cls_patch_attention(model, clips)
    assert maps.shape == (2, 4, 4, 2, 3)  # [B, T, heads, h, w]
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(2, 4, 4))
    raw = model.get_last_selfattention(clips)[1, 2, 3, 0]  # frame 2, head 3, CLS query
    expected = raw[1:] / raw[1:].sum()
    torch.testing.assert_close(maps[1, 2, 3].flatten(), expected)


def test_attention_command_writes_maps_sheets_and_video(tiny_backbone_dir, videos, tmp_path):
    out = tmp_path / "att"
    args = ["attention", "--checkpoint", str(tiny_backbone_dir), str(videos / "sub" / "b.mkv"),
            "--output", str(out), "--frame-step", "2", "--workers", "0", "--device", "cpu",
            "--precision", "fp32", "--quiet"]
    assert main(args) == 0
    maps = np.load(out / "b" / "attention.npy")
    assert maps.shape == (3, 4, 4, 2, 2) and maps.dtype == np.float16
    np.testing.assert_allclose(maps.astype(np.float32).sum((-2, -1)), 1.0, atol=2e-3)
    sheets = sorted(p.name for p in (out / "b" / "sheets").iterdir())
    assert sheets == [f"window_{k:05d}.png" for k in range(3)]
    assert open_video(out / "b" / "attention.mp4").num_frames == 12  # 3 windows x 4 frames
    assert json.loads((out / "run.json").read_text())["errors"] == []
