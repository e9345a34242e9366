"""PolypDiag ``data.test_protocol=release``: the release's test clip and crop, as its code runs.

Expected numbers were computed once with the release's own functions (med-air/Endo-FM commit
206427e: ``datasets/decoder.py`` ``get_start_end_idx`` + ``temporal_sampling`` as ``pyav_decode``
and ``decode`` call them for clip 0 of 1, ``datasets/transform.py``
``random_short_side_scale_jitter`` + ``uniform_crop`` with spatial index 0), not by endofm.
"""

import numpy as np
import pytest
import torch

from endofm.config import RECIPES, ConfigError, load_config
from endofm.data import VideoItem
from endofm.data import clips as classification_data
from endofm.data.sampling import release_test_clip
from endofm.data.transforms import crop, normalize, release_crop_box, to_clip
from endofm.tasks.base import task_config_schema
from endofm.tasks.classification.data import ClassificationDataConfig
from endofm.tasks.classification.task import ClassificationTask

# (video frames, fps) -> the release's 8 frame indices (sampling rate 32, 30 fps reference)
RELEASE_CLIPS = {
    (100, 30.0): [0, 36, 72, 99, 99, 99, 99, 99],  # under 256 frames: clamped, repeated
    (400, 30.0): [0, 36, 72, 109, 145, 182, 218, 255],
    (256, 30.0): [0, 36, 72, 109, 145, 182, 218, 255],
    (180, 25.0): [0, 30, 60, 91, 121, 151, 179, 179],  # window 213.3 frames at 25 fps
    (1000, 25.0): [0, 30, 60, 91, 121, 151, 182, 212],
}
# (frame height, width after the release's short-side resize, crop) -> box (top, left, h, w)
RELEASE_BOXES = {
    (224, 298, 224): (0, 0, 224, 224),
    (298, 224, 224): (0, 0, 224, 224),
    (64, 80, 48): (8, 0, 48, 48),
    (80, 64, 48): (0, 8, 48, 48),
    (64, 64, 48): (8, 0, 48, 48),
}


@pytest.mark.parametrize(("video", "want"), RELEASE_CLIPS.items(), ids=str)
def test_release_test_clip_indices(video, want):
    assert release_test_clip(*video, num_frames=8, frame_step=32).tolist() == want


@pytest.mark.parametrize(("frame", "want"), RELEASE_BOXES.items(), ids=str)
def test_release_crop_box(frame, want):
    assert release_crop_box(*frame) == want


class FakeVideo:
    """Frames whose first channel is the frame index and second the column: exact checks."""

    def __init__(self, num_frames: int, height: int, width: int) -> None:
        self.num_frames, self.fps, self.height, self.width = num_frames, 30.0, height, width

    def read(self, indices) -> np.ndarray:
        t = np.asarray(indices, dtype=np.uint8)[:, None, None]
        frames = np.zeros((len(indices), self.height, self.width, 3), dtype=np.uint8)
        frames[..., 0] = t
        frames[..., 1] = np.arange(self.width, dtype=np.uint8)[None, None, :]
        return frames


@pytest.mark.parametrize(("num_frames", "indices"), [(100, RELEASE_CLIPS[(100, 30.0)]),
                                                     (400, RELEASE_CLIPS[(400, 30.0)])])
def test_test_views_release_protocol(monkeypatch, num_frames, indices):
    video = FakeVideo(num_frames, 32, 48)  # short side already = crop size: no resampling
    monkeypatch.setattr(classification_data, "open_video", lambda path, fps: video)
    cfg = ClassificationDataConfig(crop_size=32, test_short_side=40, test_protocol="release")
    views = classification_data.test_views(VideoItem(path="v.mp4", label=0), cfg)
    want = normalize(crop(to_clip(video.read(indices)), (0, 0, 32, 32)), cfg.mean, cfg.std)
    assert views.shape == (1, 3, 8, 32, 32)
    torch.testing.assert_close(views[0], want, rtol=0, atol=0)
    centred = classification_data.test_views(VideoItem(path="v.mp4", label=0),
                         ClassificationDataConfig(crop_size=32, test_short_side=32))
    assert not torch.equal(centred, views)  # the default protocol is another clip and crop


def test_release_protocol_rejects_several_views():
    schema = task_config_schema(ClassificationTask)
    with pytest.raises(ConfigError, match="one clip and one crop"):
        load_config(schema, None, ["data.test_protocol=release", "data.test_crops=3"])
    with pytest.raises(ConfigError, match="test_protocol"):
        load_config(schema, None, ["data.test_protocol=uniform"])


def test_release_recipe_at_tiny_size(sample_data, tmp_path):
    """configs/classification/polypdiag_release.yaml with tiny.yaml's model and clip sizes (the
    release's test protocol and selection kept) fine-tunes and tests."""

    from omegaconf import OmegaConf

    from endofm.config import load_config
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema
    from endofm.tasks.engine import fit

    configs = RECIPES / "classification"
    tiny = OmegaConf.load(configs / "tiny.yaml")
    sizes = [f"model.backbone.{k}={v}" for k, v in tiny.model.backbone.items()
             if k != "drop_path_rate"]
    sizes += [f"data.{k}={v}".replace(" ", "") for k, v in tiny.data.items()
              if k not in ("test_clips", "clips_per_video")]
    task_cls = TASKS["classification"]
    cfg = load_config(task_config_schema(task_cls), configs / "polypdiag_release.yaml",
                      [*sizes, "train.epochs=1", "train.device=cpu", "train.num_workers=0"])
    assert (cfg.data.test_protocol, cfg.data.test_clips, cfg.data.test_crops) == (
        "release", 1, 1)
    assert cfg.protocol.selection == "test"
    result = fit(task_cls(cfg), sample_data["polypdiag"], tmp_path / "run")
    assert 0.0 <= result["f1"] <= 1.0
