"""The coco format: boxes, polygons, RLE, crowd regions, COCO-VID clips, keyframe-only
files, splits from annotation files, and every bad annotation named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from endofm.data.datasets.records import DatasetError
from endofm.data.formats import FormatOptions, read_format, select_items

CATEGORIES = [{"id": 3, "name": "grasper"}, {"id": 8, "name": "clip"}]


def image(root, name, size=(40, 30)):
    path = root / "images" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)
    return {"file_name": name, "width": size[0], "height": size[1]}


def write(path, images, annotations, **extra):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": CATEGORIES, **extra}))
    return path


def rle(box, compressed=True):
    m = np.zeros((30, 40), np.uint8, order="F")
    m[box[1]:box[3], box[0]:box[2]] = 1
    if not compressed:
        flat = m.ravel(order="F")
        changes = np.flatnonzero(np.diff(np.r_[0, flat, 0 if flat[-1] else 1]))
        return {"size": [30, 40], "counts": np.diff(np.r_[0, changes]).tolist()}
    out = mask_utils.encode(m)
    return {"size": out["size"], "counts": out["counts"].decode()}


def test_boxes_polygons_rle_and_crowd(tmp_path):
    images = [image(tmp_path, f"{i}.png") | {"id": i} for i in range(5)]
    anns = [
        {"id": 1, "image_id": 0, "category_id": 3, "bbox": [2, 3, 10, 5]},
        {"id": 2, "image_id": 1, "category_id": 8,
         "segmentation": [[4, 4, 14, 4, 14, 10, 4, 10]]},
        {"id": 3, "image_id": 2, "category_id": 3, "segmentation": rle((5, 6, 15, 12))},
        {"id": 4, "image_id": 3, "category_id": 8, "iscrowd": 1,
         "segmentation": rle((1, 1, 20, 20), compressed=False)},
    ]
    data = read_format("coco", write(tmp_path / "ann.json", images, anns), FormatOptions())
    assert data.classes.names == ("grasper", "clip") and data.classes.ids == (3, 8)
    frames = {v.name: v.frames[0] for v in data.plan.items}
    assert set(frames) == {"0", "1", "2", "3", "4"}  # plain COCO: single frames
    assert frames["0"].boxes.tolist() == [[2, 3, 12, 8]] and frames["0"].labels.tolist() == [1]
    assert frames["1"].boxes.tolist() == [[4, 4, 14, 10]] and frames["1"].labels.tolist() == [2]
    assert frames["2"].boxes.tolist() == [[5, 6, 15, 12]]
    assert len(frames["3"].boxes) == 0 and frames["3"].crowd.tolist() == [[1, 1, 20, 20]]
    assert frames["4"].annotated and len(frames["4"].boxes) == 0  # a negative


def test_coco_vid_orders_frames_and_keyframes_only_give_context(tmp_path):
    images = [image(tmp_path, f"vid{v}/{n:04d}.jpg") | {"id": v * 10 + n, "video_id": v,
                                                        "frame_id": n}
              for v in (1, 2) for n in (3, 0, 2, 1)]
    anns = [{"id": 1, "image_id": 12, "category_id": 3, "bbox": [1, 1, 5, 5]},
            {"id": 2, "image_id": 20, "category_id": 8, "bbox": [1, 1, 5, 5]}]
    videos = [{"id": 1, "name": "case1"}, {"id": 2, "name": "case2"}]
    path = write(tmp_path / "ann.json", images, anns, videos=videos)
    data = read_format("coco", path, FormatOptions(unannotated="skip"))
    by_name = {v.name: v for v in data.plan.items}
    assert [f.image.name for f in by_name["case1"].frames] == [
        "0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg"]
    assert [f.annotated for f in by_name["case1"].frames] == [False, False, True, False]
    from endofm.tasks.detection.data import KumcClips

    clips = KumcClips(data.plan.items, num_frames=3, stride=1)
    assert len(clips) == 2  # the two keyframes are the targets
    assert clips.index == [(0, 2), (1, 0)]
    negative = read_format("coco", path, FormatOptions())
    assert sum(f.annotated for v in negative.plan.items for f in v.frames) == 8


def test_prefix_groups_endoscapes_style_names(tmp_path):
    images = [image(tmp_path, f"{v}_{n}.jpg") | {"id": v * 100000 + n} for v in (1, 2)
              for n in (14050, 14025)]
    anns = [{"id": 1, "image_id": 114050, "category_id": 3, "bbox": [1, 1, 5, 5]}]
    data = read_format("coco", write(tmp_path / "a.json", images, anns),
                       FormatOptions(video_of="prefix"))
    assert {v.name: [f.image.name for f in v.frames] for v in data.plan.items} == {
        "1": ["1_14025.jpg", "1_14050.jpg"], "2": ["2_14025.jpg", "2_14050.jpg"]}


def test_bad_annotations_are_named(tmp_path):
    images = [image(tmp_path, "a.png") | {"id": 1}, {"id": 2, "file_name": "gone.png",
                                                       "width": 40, "height": 30}]
    anns = [{"id": 10, "image_id": 1, "category_id": 3, "bbox": [30, 20, 30, 30]},
            {"id": 11, "image_id": 99, "category_id": 3, "bbox": [1, 1, 2, 2]},
            {"id": 12, "image_id": 1, "category_id": 5, "bbox": [1, 1, 2, 2]},
            {"id": 13, "image_id": 1, "category_id": 3, "bbox": [1, 1, 0, 2]},
            {"id": 14, "image_id": 1, "category_id": 3, "bbox": [1, 1, 39.6, 2]}]
    path = write(tmp_path / "ann.json", images, anns)
    errors: list = []
    data = read_format("coco", path, FormatOptions(), errors)
    reasons = {e["path"]: e["reason"] for e in errors}
    assert "outside the 40x30 image" in reasons[f"{path}: annotation 10 (a.png)"]
    assert reasons[f"{path}: annotation 11"] == "its image_id 99 is not in images"
    assert reasons[f"{path}: annotation 12"] == "category_id 5 is not a category"
    assert "empty box" in reasons[f"{path}: annotation 13 (a.png)"]
    assert "gone.png not found" in reasons[f"{path}: image 2"]
    (kept,) = data.plan.items
    assert kept.frames[0].boxes.tolist() == [[1, 1, 40, 3]]  # 0.6 px over the border: clipped
    with pytest.raises(DatasetError, match="annotation 11: its image_id 99 is not in images"):
        read_format("coco", path, FormatOptions())


def test_malformed_segmentations_are_named_and_left_out_of_boxes_and_masks(tmp_path):
    """Polygons of fewer than 3 points (pycocotools would read 4 numbers as a box and fail),
    odd or non-numeric coordinates, an RLE of another size and a segmentation of neither
    kind: each one line naming the annotation; the image's good annotation alone is kept,
    as a box and in the drawn mask."""
    images = [image(tmp_path, "a.png") | {"id": 1}]
    bad = {20: [[10, 10, 20, 10]], 21: [[1, 2, 3, 4, 5, 6, 7]], 22: [[1, 2, "x", 4, 5, 6]],
           23: {"size": [60, 80], "counts": rle((1, 1, 5, 5))["counts"]}, 24: "polygon"}
    anns = [{"id": i, "image_id": 1, "category_id": 3, "segmentation": seg}
            for i, seg in bad.items()]
    anns.append({"id": 25, "image_id": 1, "category_id": 8,
                 "segmentation": [[20, 5, 30, 5, 30, 15, 20, 15]]})
    anns.append({"id": 26, "image_id": 1, "category_id": 3, "bbox": [35, 25, 20, 20],
                 "segmentation": [[35, 25, 55, 25, 55, 45]]})  # outside the image
    path = write(tmp_path / "ann.json", images, anns)
    for fmt in ("coco", "coco_masks"):
        errors: list = []
        data = read_format(fmt, path, FormatOptions(), errors)
        reasons = {e["path"].rsplit(" ", 2)[-2]: e["reason"] for e in errors}
        assert reasons["20"] == "polygon 0 is not 3 or more x, y points: [10, 10, 20, 10]"
        assert reasons["21"].startswith("polygon 0 is not 3 or more x, y points")
        assert reasons["22"].startswith("polygon 0 is not 3 or more x, y points")
        assert reasons["23"] == "RLE size [60, 80] is not the image's [height, width] [30, 40]"
        assert reasons["24"].startswith("segmentation is neither polygons nor an RLE")
        assert "outside the 40x30 image" in reasons["26"]
        assert len(errors) == 6
    frame = read_format("coco", path, FormatOptions(), []).plan.items[0].frames[0]
    assert frame.boxes.tolist() == [[20, 5, 30, 15]] and frame.labels.tolist() == [2]
    (seq,) = data.plan.items
    mask = data.masks.decode(seq.masks[0])
    assert set(np.unique(mask).tolist()) == {0, 2} and mask[10, 25] == 2 and mask[2, 2] == 0


def test_a_polygon_box_needs_no_image_size(tmp_path):
    """An image entry without width and height (some tools leave them out): a polygon's
    box is the extent of its points."""
    Image.new("RGB", (40, 30)).save(tmp_path / "a.png")
    anns = [{"id": 1, "image_id": 1, "category_id": 3,
             "segmentation": [[4.5, 4, 14, 4, 14, 10.25, 4.5, 10.25]]}]
    path = write(tmp_path / "ann.json", [{"id": 1, "file_name": "a.png"}], anns)
    frame = read_format("coco", path, FormatOptions()).plan.items[0].frames[0]
    assert frame.boxes.tolist() == [[4.5, 4, 14, 10.25]]


def test_splits_from_annotation_files_else_carved_by_video(tmp_path):
    for split, ids in (("train", range(0, 6)), ("val", range(6, 8)), ("test", range(8, 10))):
        images = [image(tmp_path, f"{i}.png") | {"id": i} for i in ids]
        anns = [{"id": i, "image_id": i, "category_id": 3, "bbox": [1, 1, 4, 4]} for i in ids]
        write(tmp_path / "annotations" / f"instances_{split}.json", images, anns)
    data = read_format("coco", tmp_path, FormatOptions())
    assert [v.name for v in select_items(data, "val", 0.2, 0)] == ["6", "7"]
    assert [v.name for v in select_items(data, "test", 0.2, 0)] == ["8", "9"]
    assert len(select_items(data, "train", 0.2, 0)) == 6
    one = read_format("coco", tmp_path / "annotations" / "instances_train.json",
                      FormatOptions())
    test = select_items(one, "test", 0.5, 0)
    assert len(test) == 3 and not {v.name for v in test} & {
        v.name for v in select_items(one, "train", 0.5, 0)}


def test_segmentation_masks_drawn_from_polygons_rle_and_crowd(tmp_path):
    images = [image(tmp_path, f"v/{n}.png") | {"id": n, "video_id": 1, "frame_id": n}
              for n in range(3)]
    anns = [{"id": 1, "image_id": 0, "category_id": 3,
             "segmentation": [[2, 2, 12, 2, 12, 8, 2, 8]], "bbox": [2, 2, 10, 6]},
            {"id": 2, "image_id": 0, "category_id": 8, "segmentation": rle((20, 10, 30, 20))},
            {"id": 3, "image_id": 0, "category_id": 8, "iscrowd": 1,
             "segmentation": rle((0, 25, 40, 30), compressed=False)},
            {"id": 4, "image_id": 2, "category_id": 3, "bbox": [0, 0, 5, 5]}]
    path = write(tmp_path / "ann.json", images, anns, videos=[{"id": 1, "name": "case"}])
    data = read_format("coco_masks", path, FormatOptions(unannotated="skip"))
    assert data.classes.names == ("background", "grasper", "clip")
    assert data.classes.ids == (0, 3, 8)
    (seq,) = data.plan.items
    assert [f.name for f in seq.frames] == ["0.png", "2.png"]  # frame 1 has no annotation
    mask = data.masks.decode(seq.masks[0])
    assert mask.shape == (30, 40)
    assert mask[5, 6] == 1 and mask[15, 25] == 2 and mask[27, 5] == 255 and mask[15, 5] == 0
    assert data.masks.decode(seq.masks[1])[2, 2] == 1  # a box without a segmentation


def test_windows_file_names_resolve_and_ids_must_be_integers(tmp_path):
    """Exports written on Windows keep backslashes (and the annotator's drive) in file_name;
    an id that is not an integer is one error naming the entry."""
    for name in ("a.png", "b.png"):
        image(tmp_path, name)
    images = [{"id": 1, "file_name": "images\\a.png"},
              {"id": 2, "file_name": "C:\\Users\\nurse\\export\\images\\b.png"}]
    anns = [{"id": 1, "image_id": 2, "category_id": 3, "bbox": [1, 1, 5, 5]}]
    path = write(tmp_path / "ann.json", images, anns)
    data = read_format("coco", path, FormatOptions())
    assert sorted(v.frames[0].image for v in data.plan.items) == [
        tmp_path / "images" / "a.png", tmp_path / "images" / "b.png"]
    write(path, images, [anns[0] | {"image_id": "2"}])
    with pytest.raises(DatasetError, match=r"annotations\[0\]: image_id '2' is not an integer"):
        read_format("coco", path, FormatOptions())
    write(path, [images[0] | {"id": "abc"}], [])
    with pytest.raises(DatasetError, match=r"images\[0\]: id 'abc' is not an integer"):
        read_format("coco", path, FormatOptions())
