"""``endofm data inspect --format manifest|folders``: counts per class and split, bad rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from endofm.cli.main import main
from endofm.data.inspect import inspect_dataset

from .conftest import COLOURS, tiny_video


def test_manifest_counts_per_class_and_split_and_lists_bad_rows(tmp_path, capsys):
    for i in range(4):
        tiny_video(tmp_path / f"v{i}.mp4", COLOURS["hook"], frames=6 + i)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    path = tmp_path / "labels.csv"
    path.write_text("path,label,split\nv0.mp4,hook,train\nv1.mp4,grasper,train\n"
                    "v2.mp4,hook,test\nv3.mp4,hook,\nbroken.mp4,hook,train\n"
                    "gone.mp4,hook,train\n")
    summary = inspect_dataset(path, "manifest")
    assert summary["format"] == "manifest"
    assert summary["label_counts"] == {"grasper": 1, "hook": 3}
    assert summary["splits"]["train"]["label_counts"] == {"grasper": 1, "hook": 1}
    assert summary["splits"]["test"]["num_videos"] == 1
    assert summary["splits"]["unassigned"]["num_videos"] == 1
    assert summary["num_videos"] == 4 and summary["num_frames"] == 6 + 7 + 8 + 9
    assert summary["frames_per_video"] == {"min": 6, "median": 7.5, "max": 9}
    assert [c["name"] for c in summary["classes"]] == ["grasper", "hook"]
    paths = [e["path"] for e in summary["errors"]]
    assert f"{path}:7" in paths and str(broken) in paths and len(paths) == 2
    assert main(["data", "inspect", str(path), "--json"]) == 0  # detected: a manifest file
    printed = json.loads(capsys.readouterr().out)
    assert printed["label_counts"] == summary["label_counts"]
    assert main(["data", "inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "train:" in text and "grasper: 1, hook: 1" in text and "gone.mp4 does not exist" in text


def test_folders_inspect_names_stray_files(tmp_path):
    tiny_video(tmp_path / "train" / "hook" / "a.mp4", COLOURS["hook"])
    tiny_video(tmp_path / "test" / "clipper" / "b.mp4", COLOURS["clipper"])
    (tmp_path / "test" / "clipper" / "readme.txt").write_text("x")
    summary = inspect_dataset(tmp_path, "folders")
    assert summary["splits"]["train"]["label_counts"] == {"clipper": 0, "hook": 1}
    assert summary["splits"]["test"]["label_counts"] == {"clipper": 1, "hook": 0}
    assert summary["errors"] == [{"path": str(tmp_path / "test" / "clipper" / "readme.txt"),
                                  "reason": "not a video file, image or frame folder"}]


def test_image_masks_inspect_lists_values_seen_against_declared(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    clip = tmp_path / "video01"
    clip.mkdir()
    for n, values in ((1, (50, 11)), (2, (50, 77)), (3, (50,))):
        Image.new("RGB", (8, 6)).save(clip / f"frame_{n}_endo.png")
        mask = np.full((6, 8), values[0], np.uint8)
        mask[3:] = values[-1]
        Image.fromarray(mask).save(clip / f"frame_{n}_endo_watershed_mask.png")
        Image.new("RGB", (8, 6)).save(clip / f"frame_{n}_endo_color_mask.png")
    Image.new("RGB", (8, 6)).save(clip / "frame_4_endo.png")  # no mask
    Image.new("RGB", (8, 6)).save(clip / "frame_5_endo.png")
    Image.new("L", (4, 4)).save(clip / "frame_5_endo_watershed_mask.png")  # wrong size
    (tmp_path / "classes.yaml").write_text("Black Background: 50\nAbdominal Wall: 11\n")
    assert main(["data", "inspect", str(tmp_path), "--format", "image_masks",
                 "--mask-suffix", "_watershed_mask", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_videos"] == 1 and summary["num_frames"] == 2
    assert summary["label_counts"] == {"Black Background": 2, "Abdominal Wall": 1}
    values = summary["mask_values"]
    assert values["seen"] == {"0": 1, "11": 1, "50": 3, "77": 1}
    assert values["undeclared"] == {"0": [str(clip / "frame_5_endo_watershed_mask.png")],
                                    "77": [str(clip / "frame_2_endo_watershed_mask.png")]}
    reasons = {e["path"]: e["reason"] for e in summary["errors"]}
    assert "no mask frame_4_endo_watershed_mask.*" in reasons[str(clip / "frame_4_endo.png")]
    assert "mask values [77] are not declared" in reasons[
        str(clip / "frame_2_endo_watershed_mask.png")]
    assert len(summary["errors"]) == 3


def test_coco_inspect_counts_per_category_and_split_and_names_bad_entries(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    for n in range(3):
        Image.new("RGB", (40, 30)).save(tmp_path / "images" / f"{n}.png")
    (tmp_path / "images" / "2.png").write_bytes(b"broken")
    coco = {"categories": [{"id": 3, "name": "grasper"}, {"id": 8, "name": "clip"}],
            "images": [{"id": n, "file_name": f"{n}.png", "width": 40, "height": 30,
                        "video_id": 1, "frame_id": n} for n in range(3)]
            + [{"id": 9, "file_name": "missing.png", "width": 40, "height": 30}],
            "annotations": [{"id": 1, "image_id": 0, "category_id": 3, "bbox": [1, 1, 5, 5]},
                            {"id": 2, "image_id": 0, "category_id": 8, "bbox": [1, 1, 5, 5]},
                            {"id": 3, "image_id": 1, "category_id": 8, "bbox": [30, 1, 20, 5]},
                            {"id": 4, "image_id": 77, "category_id": 8, "bbox": [1, 1, 5, 5]}]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco))
    assert main(["data", "inspect", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "coco"
    assert summary["label_counts"] == {"grasper": 1, "clip": 1}
    assert summary["splits"]["unassigned"]["num_frames"] == 2
    assert summary["frames_per_video"]["max"] == 2 and summary["negative_frames"] == 1
    reasons = " | ".join(f"{e['path']}: {e['reason']}" for e in summary["errors"])
    assert "annotation 3 (1.png): box" in reasons and "outside the 40x30 image" in reasons
    assert "annotation 4: its image_id 77 is not in images" in reasons
    assert "image 9: missing.png not found" in reasons
    assert f"{tmp_path / 'images' / '2.png'}: unreadable" in reasons
    assert len(summary["errors"]) == 4


@pytest.mark.parametrize("fmt", ["manifest", "image_masks", "coco"])
def test_a_folder_that_is_not_of_the_format_is_one_error_naming_it(tmp_path, fmt):
    """A dataset its format cannot read at all is reported (not raised, not left silent)."""
    (tmp_path / "notes.txt").write_text("no dataset here\n")
    summary = inspect_dataset(tmp_path, fmt)
    assert summary["num_videos"] == 0 and len(summary["errors"]) == 1
    assert summary["errors"][0]["path"].startswith(str(tmp_path))


def plain_coco_of_two_videos(root):
    """A plain COCO file (no video_id) whose images sit in one folder per video."""
    from PIL import Image

    images = []
    for v in (1, 2):
        (root / "images" / f"case{v}").mkdir(parents=True)
        for n in range(3):
            name = f"case{v}/frame_{n * 5:06d}.jpg"
            Image.new("RGB", (40, 30)).save(root / "images" / name)
            images.append({"id": v * 10 + n, "file_name": name, "width": 40, "height": 30})
    coco = {"categories": [{"id": 3, "name": "grasper"}], "images": images,
            "annotations": [{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 5, 5]}]}
    path = root / "instances.json"
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("settings", [["data.video_of=prefix", "data.unannotated=skip"],
                                      ["--video-of", "prefix", "--unannotated", "skip"]])
def test_inspect_takes_the_reader_settings_as_finetune_names_them(tmp_path, capsys, settings):
    path = plain_coco_of_two_videos(tmp_path)
    assert main(["data", "inspect", str(path), "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert alone["num_videos"] == 6 and alone["negative_frames"] == 5
    assert main(["data", "inspect", str(path), "--json", *settings]) == 0
    grouped = json.loads(capsys.readouterr().out)
    assert grouped["num_videos"] == 2 and grouped["frames_per_video"]["max"] == 3
    assert grouped["negative_frames"] == 0  # the unannotated frames are context, not negatives


@pytest.mark.parametrize("override, message", [
    ("train.epochs=3", "'train.epochs=3' is not a reader setting; it takes data.classes_file"),
    ("data.unannotated=maybe", "data.unannotated must be one of negative, skip, got 'maybe'"),
    ("data.ignore_index=white", "data.ignore_index must be an integer mask value"),
])
def test_inspect_refuses_a_setting_it_does_not_read_in_one_line(tmp_path, capsys, override,
                                                                  message):
    path = plain_coco_of_two_videos(tmp_path)
    assert main(["data", "inspect", str(path), override]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def jpeg_colour_masks(root, colours, size=(96, 64)):
    """One sequence of JPEG colour masks (quality 75) with a region of each colour and sharp
    edges between them, its frames beside it, and a classes file of red and blue on black."""
    from PIL import Image

    (root / "images" / "case").mkdir(parents=True)
    (root / "masks" / "case").mkdir(parents=True)
    (root / "classes.yaml").write_text("background: [0, 0, 0]\ntool: [255, 0, 0]\n"
                                       "liver: [0, 0, 255]\n")
    w, h = size
    for n, colour in enumerate(colours):
        mask = np.zeros((h, w, 3), np.uint8)
        mask[: h // 2, : w // 2] = (255, 0, 0)
        mask[h // 2:, w // 2:] = (0, 0, 255)
        mask[h // 4: 3 * h // 4, w // 3: 2 * w // 3] = colour
        Image.fromarray(mask).save(root / "masks" / "case" / f"{n}.jpg", quality=75)
        Image.new("RGB", size).save(root / "images" / "case" / f"{n}.jpg")


def test_lossy_masks_far_from_every_declared_value_are_listed(tmp_path, capsys):
    """JPEG masks snap to the nearest declared colour; edge noise passes, but a region of a
    colour the classes file lacks (green here) is named with its share and value."""
    jpeg_colour_masks(tmp_path, [(255, 0, 0), (0, 0, 255), (0, 255, 0)])
    summary = inspect_dataset(tmp_path, "image_masks")
    far = summary["mask_values"]["lossy_far_from_declared"]
    assert far["count"] == 1 and far["masks"][0]["path"].endswith("2.jpg")
    assert 0.15 < far["masks"][0]["share"] < 0.25  # the green third of the middle half
    green = far["masks"][0]["value"]
    assert green[1] > 200 and green[0] < 50 and green[2] < 50
    assert main(["data", "inspect", str(tmp_path), "--format", "image_masks"]) == 0
    out = capsys.readouterr().out
    assert "1 lossy masks far from every declared value" in out and "2.jpg:" in out


def test_jpeg_edge_noise_alone_lists_no_lossy_mask(tmp_path):
    jpeg_colour_masks(tmp_path, [(255, 0, 0), (0, 0, 255), (0, 0, 0)])
    summary = inspect_dataset(tmp_path, "image_masks")
    assert summary["mask_values"]["lossy_far_from_declared"] == {"count": 0, "masks": []}
