"""Detection on your own COCO-VID export with three named categories, end to end: fine-tune,
evaluate, predict; the dataset's own category ids and names reach metrics.json, config.json,
predictions.json and the contact sheets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from endofm.cli.main import main
from endofm.data.video import write_video

pytestmark = pytest.mark.slow
CATEGORIES = [{"id": 4, "name": "grasper"}, {"id": 9, "name": "hook"},
              {"id": 17, "name": "clipper"}]
COLOURS = {4: (230, 30, 30), 9: (30, 230, 30), 17: (30, 30, 230)}
TINY = ["--config", "tiny", "--quiet", "train.epochs=1", "train.batch_size=4",
        "model.min_size=64", "model.max_size=64", "data.num_frames=2", "eval.batch_size=4"]


def frame(t: int, cat: int) -> tuple[np.ndarray, list[float]]:
    image = np.full((48, 64, 3), 100, np.uint8)
    x = 6 + 4 * t
    image[10:26, x:x + 16] = COLOURS[cat]
    return image, [x, 10, 16, 16]


def write_coco_vid(root) -> None:
    images, anns, videos = [], [], []
    for v in range(5):
        videos.append({"id": v + 1, "name": f"case{v}"})
        cat = CATEGORIES[v % 3]["id"]
        for t in range(4):
            image, box = frame(t, cat)
            name = f"case{v}/frame_{t:03d}.png"
            (root / "images" / f"case{v}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "images" / name)
            image_id = len(images) + 1
            images.append({"id": image_id, "file_name": name, "width": 64, "height": 48,
                           "video_id": v + 1, "frame_id": t})
            if t % 2 == 0:  # keyframes only
                anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat,
                             "bbox": box, "area": 256, "iscrowd": 0})
    (root / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": CATEGORIES, "videos": videos}))


def test_coco_vid_keyframes_end_to_end(tmp_path, capsys):
    data = tmp_path / "data"
    write_coco_vid(data)
    out = tmp_path / "run"
    assert main(["finetune", "detection", "--data", str(data / "annotations.json"),
                 "--output", str(out), "data.unannotated=skip", *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["grasper", "hook", "clipper"]
    assert [(c["id"], c["name"]) for c in metrics["classes"]] == [(4, "grasper"), (9, "hook"),
                                                                 (17, "clipper")]
    assert set(metrics["per_class"]) == {"grasper", "hook", "clipper"}
    assert metrics["num_frames"] == 2  # the test video's two keyframes are scored
    saved = json.loads((out / "best" / "config.json").read_text())
    assert [c["id"] for c in saved["classes"]] == [4, 9, 17]
    assert saved["model"]["num_classes"] == 3
    coco = json.loads((out / "test" / "predictions.json").read_text())
    assert coco["categories"] == CATEGORIES
    assert {p["category_id"] for p in coco["predictions"]} <= {4, 9, 17}
    assert {a["category_id"] for a in coco["annotations"]} <= {4, 9, 17}
    assert list((out / "test" / "sheets").glob("*.png"))
    ev = tmp_path / "eval"
    assert main(["evaluate", "detection", "--checkpoint", str(out / "best"), "--data",
                 str(data / "annotations.json"), "--output", str(ev), "--quiet"]) == 0
    again = json.loads((ev / "metrics.json").read_text())
    assert again["ap50"] == pytest.approx(metrics["ap50"])
    video = write_video(tmp_path / "clip.mp4", np.stack([frame(t, 4)[0] for t in range(4)]),
                        10.0)
    assert main(["predict", "detection", "--checkpoint", str(out / "best"), str(video),
                 "--output", str(tmp_path / "pred"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["finetune", "detection", "--data", str(data / "annotations.json"),
                 "--output", str(tmp_path / "bad"), *TINY, "model.num_classes=2"]) == 1
    assert "model.num_classes=2 disagrees with the data, which has 3 classes" in \
        capsys.readouterr().err


def test_pascal_voc_export_end_to_end(tmp_path):
    """A CVAT "PASCAL VOC" export (Annotations/<video>/ + JPEGImages/<video>/, one XML per
    frame): detected as voc, the class names from the files, the splits from ImageSets/Main,
    evaluation with the run's settings."""
    data = tmp_path / "export"
    names = {4: "grasper", 9: "hook", 17: "clipper"}
    for v in range(5):
        cat = CATEGORIES[v % 3]["id"]
        for t in range(3):
            image, (x, y, w, h) = frame(t, cat)
            (data / "JPEGImages" / f"case{v}").mkdir(parents=True, exist_ok=True)
            (data / "Annotations" / f"case{v}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(data / "JPEGImages" / f"case{v}" / f"{t:06d}.jpg")
            (data / "Annotations" / f"case{v}" / f"{t:06d}.xml").write_text(
                f"<annotation><filename>{t:06d}.jpg</filename><size><width>64</width>"
                f"<height>48</height></size><object><name>{names[cat]}</name><difficult>0"
                f"</difficult><bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + w}</xmax>"
                f"<ymax>{y + h}</ymax></bndbox></object></annotation>")
    (data / "ImageSets" / "Main").mkdir(parents=True)
    (data / "ImageSets" / "Main" / "train.txt").write_text("case0\ncase1\ncase2\ncase3\n")
    (data / "ImageSets" / "Main" / "test.txt").write_text("case4\n")
    out = tmp_path / "run"
    assert main(["finetune", "detection", "--data", str(data), "--output", str(out),
                 *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["clipper", "grasper", "hook"]
    assert metrics["num_frames"] == 3 and set(metrics["per_class"]) == set(names.values())
    assert json.loads((out / "splits.json").read_text())["test"] == ["case4"]
    ev = tmp_path / "eval"
    assert main(["evaluate", "detection", "--checkpoint", str(out / "best"), "--data",
                 str(data), "--output", str(ev), "--quiet"]) == 0
    assert json.loads((ev / "metrics.json").read_text())["ap50"] == \
        pytest.approx(metrics["ap50"])
