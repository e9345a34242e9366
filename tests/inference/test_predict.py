import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from endofm.cli.main import main
from endofm.data import open_video
from endofm.data.transforms import KINETICS_MEAN, KINETICS_STD, center_crop, normalize, to_clip
from endofm.inference import load_task_model, predict_video
from endofm.inference.predict import moving_average

ARTEFACTS = {
    "classification": ["timeline.csv", "timeline.png", "prediction.json"],
    "segmentation": ["overlay.mp4", "area.csv", "area.png"],
    "detection": ["overlay.mp4", "detections.json", "detections.png"],
}


class References(HTMLParser):
    """Every ``src``/``href`` of a page, and whether it has external references."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def page_refs(page: Path) -> list[str]:
    parser = References()
    parser.feed(page.read_text())
    parser.close()
    return parser.refs


def assert_refs_exist(page: Path) -> list[str]:
    refs = page_refs(page)
    assert refs and not [r for r in refs if "://" in r or r.startswith("//")]
    missing = [r for r in refs if not (page.parent / r).exists()]
    assert not missing, f"{page} references missing files {missing}"
    return refs


def run_predict(task: str, ckpt: Path, video: Path, out: Path, *extra: str) -> int:
    return main(["predict", task, "--checkpoint", str(ckpt), str(video), "--output", str(out),
                 "--workers", "0", "--device", "cpu", "--precision", "fp32", "--quiet", *extra])


@pytest.mark.parametrize("task", ["classification", "segmentation", "detection"])
def test_predict_writes_every_artefact_and_a_report(task, task_dirs, videos, tmp_path):
    out = tmp_path / "out"
    every = "--stride" if task == "detection" else "--frame-step"  # between predicted frames
    assert run_predict(task, task_dirs[task], videos / "sub", out, every, "4") == 0
    folder = out / "b"
    for name in ARTEFACTS[task]:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, name
    refs = assert_refs_exist(folder / "report.html")
    assert [r for r in refs if r.startswith("keyframes/")]
    assert assert_refs_exist(out / "index.html") == ["b/report.html"]
    run = json.loads((out / "run.json").read_text())
    assert run["task"] == task and run["errors"] == [] and run["num_videos"] == 1
    frames = open_video(folder / "overlay.mp4").num_frames if task != "classification" else 0
    if task == "segmentation":  # frames 0, 4, ..., 20 of the 23-frame video, and the clamped 22
        assert sorted(p.name for p in (folder / "masks").iterdir()) == [
            f"{f:06d}.png" for f in [0, 4, 8, 12, 16, 20, 22]]
        assert frames == 7 and len((folder / "area.csv").read_text().splitlines()) == 8
    if task == "detection":
        coco = json.loads((folder / "detections.json").read_text())
        assert [im["id"] for im in coco["images"]] == list(range(0, 23, 4)) and frames == 6


def test_classification_probabilities_equal_the_model_on_a_hand_built_window(task_dirs,
                                                                            videos):
    path = videos / "a.mp4"
    result = predict_video(task_dirs["classification"], path, frame_step=2, device="cpu",
                           precision="fp32")
    assert len(result.windows) == 7 and result.probs.shape == (7, 2)
    model = load_task_model(task_dirs["classification"]).model
    frames = [16, 18, 20, 22]
    assert result.windows[2].frames.tolist() == frames
    clip = to_clip(open_video(path).read(frames, short_side=37))  # 32 * 256 / 224
    clip = normalize(center_crop(clip, 32), KINETICS_MEAN, KINETICS_STD)[None]
    with torch.no_grad():
        expected = model(clip).softmax(-1)[0].numpy()
    np.testing.assert_allclose(result.probs[2], expected, atol=1e-5)
    smoothed = moving_average(result.probs[:, 1], 3)
    assert result.score == pytest.approx(smoothed.max())
    assert result.abnormal == (result.score >= 0.5)


def test_decision_rule_is_the_max_of_the_centred_moving_average():
    x = np.array([0.0, 0.9, 0.0, 0.3, 0.6, 0.9])
    np.testing.assert_allclose(moving_average(x, 3),
                               [0.45, 0.3, 0.4, 0.3, 0.6, 0.75])
    np.testing.assert_allclose(moving_average(x, 1), x)
    np.testing.assert_allclose(moving_average(x[:2], 3), [0.45, 0.45])  # shorter than width
    np.testing.assert_allclose(moving_average(x, 5)[2], 0.36)
    with pytest.raises(ValueError, match="odd"):
        moving_average(x, 2)


def test_segmentation_api_matches_the_written_masks(task_dirs, videos, tmp_path):
    path = videos / "sub" / "b.mkv"
    result = predict_video(task_dirs["segmentation"], path, frame_step=4, device="cpu",
                           precision="fp32")
    assert result.frames.tolist() == [0, 4, 8, 12, 16, 20, 22]
    assert result.masks.shape == (7, 48, 64) and result.masks.max() <= 1
    np.testing.assert_allclose(result.area, result.masks.reshape(7, -1).mean(1))
    run_predict("segmentation", task_dirs["segmentation"], path, tmp_path, "--frame-step", "4")
    written = np.asarray(Image.open(tmp_path / "b" / "masks" / "000012.png")) // 255
    np.testing.assert_array_equal(written, result.masks[3])
    with open(tmp_path / "b" / "area.csv", newline="") as f:
        area = [float(r["polyp_fraction"]) for r in csv.DictReader(f)]
    np.testing.assert_allclose(area, result.area, atol=1e-6)


def test_wrong_task_for_a_checkpoint_is_an_error(task_dirs, videos, tmp_path, capsys):
    assert run_predict("detection", task_dirs["classification"], videos, tmp_path) == 1
    assert "is a classification model, not a detection model" in capsys.readouterr().err


@pytest.mark.parametrize("task,option,message", [
    ("classification", ["--size", "0"], "size must be >= 1 pixel, got 0"),
    ("classification", ["--workers", "-1"], "num_workers must be >= 0"),
    ("classification", ["--batch-size", "0"], "batch size must be at least 1, got 0"),
    ("classification", ["--threshold", "2"], "threshold must be in [0, 1], got 2.0"),
    ("classification", ["--smooth", "2"],
     "smooth (the smoothing width, in windows) must be a positive odd number, got 2"),
    ("detection", ["--threshold", "-0.1"], "threshold must be in [0, 1], got -0.1"),
    ("classification", ["--stride", "0"], "stride '0' must be positive"),
])
def test_a_bad_setting_is_one_clear_error_before_any_video(task_dirs, videos, tmp_path, capsys,
                                                           task, option, message):
    """Refused when the predictor is made: no progress line, nothing written (a threshold of 2
    used to call every video normal; a zero batch failed after the progress bar started)."""
    assert run_predict(task, task_dirs[task], videos, tmp_path / "out", *option) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"endofm: error: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_finetune_run_folder_names_its_model(task_dirs, videos, tmp_path, capsys):
    """The ``--output`` of ``endofm finetune`` is not the model; the error says where it is."""
    run = tmp_path / "run"
    shutil.copytree(task_dirs["classification"], run / "best")
    assert run_predict("classification", run, videos, tmp_path / "out") == 1
    assert f"it is a run folder, whose model is {run / 'best'}" in capsys.readouterr().err

def test_released_polypdiag_file_predicts(videos, tmp_path):
    ckpt = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny" / \
        "polypdiag_tiny.pth"
    assert run_predict("classification", ckpt, videos / "a.mp4", tmp_path,
                       "--frame-step", "2", "--num-heads", "4") == 0
    with open(tmp_path / "a" / "timeline.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 7  # its 4 frames x step 2: 50 frames / 8 per window
    assert [float(r["prob_normal"]) + float(r["prob_abnormal"]) for r in rows] == \
        pytest.approx([1.0] * 7)



def test_segmentation_predict_feeds_a_release_model_the_release_normalisation(tmp_path):
    """A segmenter trained with ``data.normalization=release`` (cvc12k_release.yaml) is fed BGR,
    per-frame min–max, (x − 0.5) / 0.5 frames by predict, as in training — not ImageNet's."""
    from endofm.config import load_config, recipe_path
    from endofm.inference.predict import make_predictor
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema
    from endofm.tasks.segmentation.data import read_input, to_model_input

    cls = TASKS["segmentation"]
    task = cls(load_config(task_config_schema(cls), recipe_path("segmentation", "tiny"),
                           ["data.img_size=32", "data.normalization=release"]))
    saved = task.save_model(task.build_model(None), tmp_path / "seg")
    task_model = load_task_model(saved)
    assert task_model.settings.data.normalization == "release"
    predictor = make_predictor(task_model, device="cpu", precision="fp32")
    clips = torch.randint(0, 256, (2, task_model.num_frames, 3, 32, 32), dtype=torch.uint8)
    fed = predictor.prepare(clips)
    expected = torch.stack([to_model_input(read_input(c, "release"), "release") for c in clips])
    torch.testing.assert_close(fed, expected)
    assert not torch.allclose(fed, predictor.normalized(clips.float()))
    with torch.inference_mode():
        masks = predictor.runner.forward(predictor, clips)
        logits = task_model.model(expected)
    np.testing.assert_array_equal(masks, logits.argmax(1).numpy())
