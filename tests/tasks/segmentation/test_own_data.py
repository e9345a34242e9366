"""Segmentation of your own frames and colour masks with named classes, end to end:
fine-tune, evaluate, predict; the class names reach metrics.json, config.json and the
legend of the contact sheets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from endofm.cli.main import main
from endofm.data.video import write_video

pytestmark = pytest.mark.slow
CLASSES = {"background": [0, 0, 0], "grasper": [255, 0, 0], "liver": [0, 0, 255]}
TINY = ["--config", "tiny", "--quiet", "train.epochs=2", "data.img_size=32",
        "data.num_frames=2", "data.train_stride=1", "data.eval_stride=1", "data.crop_margin=4",
        "train.batch_size=4"]


def scene(t: int, v: int) -> tuple[np.ndarray, np.ndarray]:
    """A 32 x 40 frame with a red tool square moving right and a blue organ band, and its
    colour mask."""
    image = np.full((32, 40, 3), 120, np.uint8)
    mask = np.zeros((32, 40, 3), np.uint8)
    x = 4 + 3 * t + v
    image[6:14, x:x + 8] = (230, 30, 30)
    mask[6:14, x:x + 8] = CLASSES["grasper"]
    image[22:30] = (30, 30, 230)
    mask[22:30] = CLASSES["liver"]
    return image, mask


def write_dataset(root) -> None:
    for v in range(5):
        for t in range(4):
            image, mask = scene(t, v)
            folder = f"video{v:02d}"
            (root / "images" / folder).mkdir(parents=True, exist_ok=True)
            (root / "masks" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "images" / folder / f"frame_{t * 25}.png")
            Image.fromarray(mask).save(root / "masks" / folder / f"frame_{t * 25}.png")
    lines = [f"{name}: [{', '.join(map(str, rgb))}]" for name, rgb in CLASSES.items()]
    (root / "classes.yaml").write_text("\n".join(lines) + "\n")


def test_colour_masks_end_to_end(tmp_path, capsys):
    data = tmp_path / "data"
    write_dataset(data)
    out = tmp_path / "run"
    assert main(["finetune", "segmentation", "--data", str(data), "--output", str(out),
                 *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == list(CLASSES)
    assert [c["name"] for c in metrics["classes"]] == list(CLASSES)
    assert set(metrics["per_class"]) == set(CLASSES) and 0 <= metrics["dice"] <= 1
    assert metrics["num_test_items"] == 1  # 0.2 of 5 videos, carved by video
    saved = json.loads((out / "best" / "config.json").read_text())
    assert [c["name"] for c in saved["classes"]] == list(CLASSES)
    assert saved["background"] == 0 and saved["masks"]["encoding"] == "colour"
    (test_video,) = json.loads((out / "splits.json").read_text())["test"]
    sheet = Image.open(out / "test" / "sheets" / f"{test_video}.png")
    assert sheet.height > 32  # the legend band below the tiles
    masks = sorted((out / "test" / "masks" / test_video).iterdir())
    assert len(masks) == 4 and np.asarray(Image.open(masks[0])).max() <= 2  # class indices
    ev = tmp_path / "eval"
    assert main(["evaluate", "segmentation", "--checkpoint", str(out / "best"), "--data",
                 str(data), "--output", str(ev), "--quiet"]) == 0
    again = json.loads((ev / "metrics.json").read_text())
    assert again["dice"] == pytest.approx(metrics["dice"], abs=1e-4)
    frames = np.stack([scene(t, 0)[0] for t in range(4)])
    video = write_video(tmp_path / "clip.mp4", frames, 10.0)
    assert main(["predict", "segmentation", "--checkpoint", str(out / "best"), str(video),
                 "--output", str(tmp_path / "pred"), "--quiet"]) == 0
    # the data disagreeing with model.num_classes is one clear error
    capsys.readouterr()
    assert main(["finetune", "segmentation", "--data", str(data), "--output",
                 str(tmp_path / "bad"), *TINY, "model.num_classes=2"]) == 1
    assert "model.num_classes=2 disagrees with the data, which has 3 classes" in \
        capsys.readouterr().err


def write_cvat_export(root) -> None:
    """A CVAT "Segmentation mask 1.1" export: JPEG frames in JPEGImages/, palette PNG class
    masks in SegmentationClass/ (SegmentationObject/ beside them), the classes in
    labelmap.txt (not in the order of the masks' palette) and the subsets in
    ImageSets/Segmentation/."""
    palette = [0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * (256 * 3 - 9)  # bg, liver, grasper
    names = []
    for v in range(5):
        for t in range(2):
            image, mask = scene(t, v)
            name = f"frame_{v * 2 + t:06d}"
            names.append(name)
            index = (mask[..., 0] > 0) * 2 + (mask[..., 2] > 0) * 1
            for folder in ("SegmentationClass", "SegmentationObject"):
                indexed = Image.fromarray(index.astype(np.uint8), "P")
                indexed.putpalette(palette)
                (root / folder).mkdir(parents=True, exist_ok=True)
                indexed.save(root / folder / f"{name}.png")
            (root / "JPEGImages").mkdir(exist_ok=True)
            Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n"
                                       "background:0,0,0::\ngrasper:255,0,0::\n"
                                       "liver:0,0,255::\n")
    sets = root / "ImageSets" / "Segmentation"
    sets.mkdir(parents=True)
    (sets / "default.txt").write_text("\n".join(names) + "\n")
    (sets / "train.txt").write_text("\n".join(names[:6]) + "\n")
    (sets / "val.txt").write_text("\n".join(names[6:8]) + "\n")
    (sets / "test.txt").write_text("\n".join(names[8:]) + "\n")


def test_cvat_segmentation_mask_export_end_to_end(tmp_path):
    """The export as CVAT writes it trains with labelmap.txt's classes and its own splits."""
    data = tmp_path / "export"
    write_cvat_export(data)
    out = tmp_path / "run"
    assert main(["finetune", "segmentation", "--data", str(data), "--output", str(out),
                 *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["background", "grasper", "liver"]
    assert metrics["num_test_items"] == 2
    splits = json.loads((out / "splits.json").read_text())
    assert splits["test"] == ["frame_000008", "frame_000009"]
    assert json.loads((out / "best" / "config.json").read_text())["masks"]["encoding"] == \
        "colour"
    assert set(metrics["per_class"]) == {"background", "grasper", "liver"}


def test_a_folder_per_video_with_named_folders_end_to_end(tmp_path, capsys):
    """EndoVis 2018's layout (seq_N/left_frames/, seq_N/labels/) from the command line: the
    * of the folder settings reaches the reader as typed (not as a YAML alias), each
    sequence folder is a video, and evaluate reads the data with the run's settings."""
    data = tmp_path / "endovis"
    for v in range(5):
        for t in range(3):
            image, mask = scene(t, v)
            for folder, array in (("left_frames", image), ("labels", mask)):
                (data / f"seq_{v + 1}" / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(data / f"seq_{v + 1}" / folder / f"frame{t:03d}.png")
    lines = [f"{name}: [{', '.join(map(str, rgb))}]" for name, rgb in CLASSES.items()]
    (data / "classes.yaml").write_text("\n".join(lines) + "\n")
    folders = ["data.image_folder=*/left_frames", "data.mask_folder=*/labels"]
    assert main(["data", "inspect", str(data), "--json", *folders]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["format"], summary["num_videos"], summary["num_frames"]) == \
        ("image_masks", 5, 15)
    out = tmp_path / "run"
    assert main(["finetune", "segmentation", "--data", str(data), "--output", str(out),
                 *TINY, *folders]) == 0
    splits = json.loads((out / "splits.json").read_text())
    assert sorted(splits["train"] + splits["selection"] + splits["test"]) == \
        [f"seq_{v}" for v in range(1, 6)]
    assert main(["evaluate", "segmentation", "--checkpoint", str(out / "best"), "--data",
                 str(data), "--output", str(tmp_path / "eval"), "--quiet"]) == 0
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(again["per_sequence"]) == set(splits["test"]) and again["num_frames"] == 3


def test_index_masks_without_classes_file_are_binary_and_say_so(tmp_path, capsys):
    """Masks holding class indices 0-2 but no classes.yaml: binary, and num_classes=3 is
    refused with the hint to declare the classes."""
    data = tmp_path / "data"
    write_dataset(data)
    (data / "classes.yaml").unlink()
    for mask in (data / "masks").rglob("*.png"):
        rgb = np.asarray(Image.open(mask))
        index = (rgb[..., 0] > 0) * 1 + (rgb[..., 2] > 0) * 2
        Image.fromarray(index.astype(np.uint8)).save(mask)
    assert main(["finetune", "segmentation", "--data", str(data), "--output",
                 str(tmp_path / "run"), *TINY, "model.num_classes=3"]) == 1
    assert "declare the classes in DIR/classes.yaml" in capsys.readouterr().err


def test_coco_polygons_train_a_segmenter_with_the_category_names(tmp_path):
    """A COCO-VID export with polygons: drawn as index masks, background plus the
    categories."""
    root = tmp_path / "data"
    images, anns = [], []
    for v in range(5):
        for t in range(3):
            image, _ = scene(t, v)
            name = f"video{v}/frame_{t}.png"
            (root / "images" / f"video{v}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "images" / name)
            images.append({"id": len(images) + 1, "file_name": name, "width": 40, "height": 32,
                           "video_id": v + 1, "frame_id": t})
            x = 4 + 3 * t + v
            anns += [{"id": len(anns) + 1, "image_id": len(images), "category_id": 5,
                      "segmentation": [[x, 6, x + 8, 6, x + 8, 14, x, 14]], "iscrowd": 0},
                     {"id": len(anns) + 2, "image_id": len(images), "category_id": 2,
                      "segmentation": [[0, 22, 40, 22, 40, 30, 0, 30]], "iscrowd": 0}]
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 2, "name": "liver"}, {"id": 5, "name": "grasper"}],
            "videos": [{"id": v + 1, "name": f"video{v}"} for v in range(5)]}
    (root / "annotations.json").write_text(json.dumps(coco))
    out = tmp_path / "run"
    assert main(["finetune", "segmentation", "--data", str(root / "annotations.json"),
                 "--output", str(out), *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_names"] == ["background", "liver", "grasper"]
    assert [c["id"] for c in metrics["classes"]] == [0, 2, 5]
    assert metrics["per_class"]["liver"]["pixels"] > 0
    ev = tmp_path / "eval"
    assert main(["evaluate", "segmentation", "--checkpoint", str(out / "best"), "--data",
                 str(root / "annotations.json"), "--output", str(ev), "--quiet"]) == 0
    assert json.loads((ev / "metrics.json").read_text())["dice"] == pytest.approx(
        metrics["dice"], abs=1e-4)
