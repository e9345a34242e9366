import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from endofm.tasks.segmentation.data import SegmentationSequences, SegmentationWindows
from endofm.tasks.segmentation.evaluation import (
    evaluate_sequences,
    predict_sequence,
    save_contact_sheet,
    save_mask_pngs,
)


def _sequence(root: Path, n: int, size: int = 40) -> SimpleNamespace:
    """Frames whose red channel is 255 exactly on the mask (a disc moving right)."""
    (root / "Original").mkdir(parents=True)
    (root / "Ground Truth").mkdir()
    yy, xx = np.mgrid[:size, :size]
    frames, masks = [], []
    for i in range(n):
        mask = ((yy - 20) ** 2 + (xx - 12 - 2 * i) ** 2 < 64).astype(np.uint8) * 255
        img = np.stack([mask, np.zeros_like(mask), np.zeros_like(mask)], -1)
        frames.append(root / "Original" / f"{i + 1}.tif")
        masks.append(root / "Ground Truth" / f"{i + 1}.tif")
        Image.fromarray(img).save(frames[-1])
        Image.fromarray(mask).save(masks[-1])
    return SimpleNamespace(name="seq1", frames=frames, masks=masks)


def test_training_windows_augment_frames_and_masks_alike(tmp_path):
    seq = _sequence(tmp_path, 5)
    ds = SegmentationWindows([seq], num_frames=3, stride=2, size=32)
    assert len(ds) == 2  # starts 0, 2
    torch.manual_seed(0)
    for k in range(len(ds)):
        clip, mask = ds[k]
        assert clip.shape == (3, 3, 32, 32) and mask.shape == (3, 32, 32)
        assert mask.dtype == torch.int64 and set(mask.unique().tolist()) <= {0, 1}
        red = clip[0] > 0  # normalised red > 0 ⇔ raw red above the ImageNet mean
        assert (red == mask.bool()).float().mean() > 0.97


class _RedIsPolyp(torch.nn.Module):
    """Logits from the red channel: class 1 where red is high."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([-x[:, 0], x[:, 0]], dim=1) * 10


def test_predict_sequence_and_artefacts(tmp_path):
    seq = _sequence(tmp_path / "data", 5)
    name, frames, masks = SegmentationSequences([seq], size=32)[0]
    assert name == "seq1" and frames.shape == (3, 5, 32, 32) and masks.shape == (5, 40, 40)
    probs = predict_sequence(_RedIsPolyp(), frames, num_frames=2, stride=1, out_size=(40, 40),
                             device=torch.device("cpu"))
    assert probs.shape == (5, 2, 40, 40)
    torch.testing.assert_close(probs.sum(1), torch.ones(5, 40, 40))
    pred = probs.argmax(1).numpy()
    agree = (pred == masks.numpy()).mean()
    assert agree > 0.97
    save_mask_pngs(pred, seq.frames, tmp_path / "masks")
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == [f"{i}.png" for i in
                                                                         range(1, 6)]
    sheet = save_contact_sheet(seq.frames, pred, masks.numpy(), tmp_path / "sheet.png")
    with Image.open(sheet) as im:
        assert im.size[0] > 0 and im.size[1] > 0


def test_evaluate_sequences_returns_metrics_and_writes_artefacts(tmp_path):
    seq = _sequence(tmp_path / "data", 3)
    out = tmp_path / "eval"
    result = evaluate_sequences(_RedIsPolyp(), [seq], size=32, num_frames=2, stride=1,
                                device=torch.device("cpu"), out_dir=out)
    json.dumps(result)  # plain JSON-able values
    assert result["dice"] > 0.9
    assert result["per_sequence"]["seq1"]["dice"] == pytest.approx(result["dice"])
    assert 0 < result["iou"] <= 1 and result["hd95"] >= 0
    assert result["num_sequences"] == 1 and result["num_frames"] == 3
    assert not (out / "metrics.json").exists()  # the engine alone writes metrics.json
    assert len(list((out / "masks" / "seq1").glob("*.png"))) == 3
    assert (out / "sheets" / "seq1.png").is_file()
