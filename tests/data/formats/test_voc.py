"""The voc format: Pascal VOC XML per image in a CVAT-style export (Annotations/ +
JPEGImages/ + ImageSets/Main) or beside the images (LabelImg); video folders and name
prefixes, difficult objects, negatives, the class order, and every bad file named."""

from __future__ import annotations

import pytest
from PIL import Image

from endofm.data.datasets.records import DatasetError
from endofm.data.formats import FormatOptions, read_format, select_items
from endofm.data.formats.classes import ClassSet
from endofm.data.formats.voc import is_voc


def voc_xml(filename: str, objects: list[tuple], size=(40, 30)) -> str:
    """A VOC file as CVAT / LabelImg write it; ``objects``: ``(name, box, difficult)``."""
    body = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>{int(d)}</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
        f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b, d in objects)
    return (f"<annotation><folder></folder><filename>{filename}</filename><size><width>"
            f"{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{body}</annotation>")


def annotate(root, rel: str, objects, image_dir="JPEGImages", xml_dir="Annotations",
             ext=".jpg"):
    image = root / image_dir / f"{rel}{ext}"
    image.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30)).save(image)
    xml = root / xml_dir / f"{rel}.xml"
    xml.parent.mkdir(parents=True, exist_ok=True)
    xml.write_text(voc_xml(image.name, objects))
    return xml


def test_a_cvat_export_with_video_folders_difficult_objects_and_negatives(tmp_path):
    for t in (10, 2, 1):
        annotate(tmp_path, f"case1/frame_{t}", [("polyp", (2, 3, 12, 8), False)])
    annotate(tmp_path, "case2/frame_0", [("adenoma", (1, 1, 9, 9), False),
                                         ("polyp", (20, 10, 30, 20), True)])
    annotate(tmp_path, "case2/frame_1", [])  # an XML without objects: a negative
    annotate(tmp_path, "single", [("polyp", (0, 0, 40.4, 30), False)])  # 0.4 px over: clipped
    assert is_voc(tmp_path)
    data = read_format("voc", tmp_path, FormatOptions())
    assert data.classes.names == ("adenoma", "polyp") and data.classes.ids == (1, 2)
    videos = {v.name: v for v in data.plan.items}
    assert set(videos) == {"case1", "case2", "single"}
    assert [f.image.name for f in videos["case1"].frames] == [
        "frame_1.jpg", "frame_2.jpg", "frame_10.jpg"]
    first, negative = videos["case2"].frames
    assert first.boxes.tolist() == [[1, 1, 9, 9]] and first.labels.tolist() == [1]
    assert first.crowd.tolist() == [[20, 10, 30, 20]] and first.crowd_labels.tolist() == [2]
    assert negative.annotated and len(negative.boxes) == 0
    assert videos["single"].frames[0].boxes.tolist() == [[0, 0, 40, 30]]


def test_labelimg_files_beside_their_images_group_by_name_prefix(tmp_path):
    for v in (0, 1):
        for t in (3, 1):
            annotate(tmp_path, f"vid{v}_{t}", [("polyp", (1, 1, 5, 5), False)], image_dir=".",
                     xml_dir=".", ext=".png")
    assert is_voc(tmp_path)
    singles = read_format("voc", tmp_path, FormatOptions())
    assert len(singles.plan.items) == 4  # files at the top: single frames
    data = read_format("voc", tmp_path, FormatOptions(video_of="prefix"))
    assert [(v.name, [f.image.name for f in v.frames]) for v in data.plan.items] == [
        ("vid0", ["vid0_1.png", "vid0_3.png"]), ("vid1", ["vid1_1.png", "vid1_3.png"])]


def test_the_class_order_comes_from_a_classes_file_or_a_labelmap(tmp_path):
    annotate(tmp_path, "a", [("polyp", (1, 1, 5, 5), False)])
    annotate(tmp_path, "b", [("adenoma", (1, 1, 5, 5), False)])
    (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n"
                                           "background:0,0,0::\npolyp:255,0,0::\n"
                                           "adenoma:0,255,0::\nserrated:0,0,255::\n")
    data = read_format("voc", tmp_path, FormatOptions())
    assert data.classes.names == ("polyp", "adenoma", "serrated")
    frames = {v.name: v.frames[0] for v in data.plan.items}
    assert frames["a"].labels.tolist() == [1] and frames["b"].labels.tolist() == [2]
    (tmp_path / "order.yaml").write_text("[adenoma, polyp]\n")
    data = read_format("voc", tmp_path, FormatOptions(classes_file=str(tmp_path / "order.yaml")))
    assert data.classes.names == ("adenoma", "polyp")
    model = ClassSet(("polyp", "adenoma"), (1, 2))  # a trained model's classes
    data = read_format("voc", tmp_path, FormatOptions(known_classes=model))
    assert data.classes == model and {v.name: v.frames[0].labels.tolist()
                                      for v in data.plan.items} == {"a": [1], "b": [2]}


def test_splits_from_imagesets_main(tmp_path):
    for name in ("a", "b", "c"):
        annotate(tmp_path, name, [("polyp", (1, 1, 5, 5), False)])
    sets = tmp_path / "ImageSets" / "Main"
    sets.mkdir(parents=True)
    (sets / "train.txt").write_text("a\nb\n")
    (sets / "test.txt").write_text("c\n")
    data = read_format("voc", tmp_path, FormatOptions())
    assert [v.name for v in select_items(data, "test", 0.5, 0)] == ["c"]
    assert [v.name for v in select_items(data, "train", 0.5, 0)] == ["a", "b"]


def test_every_bad_file_is_named(tmp_path):
    good = annotate(tmp_path, "good", [("polyp", (1, 1, 5, 5), False)])
    outside = annotate(tmp_path, "outside", [("polyp", (30, 20, 60, 29), False)])
    empty = annotate(tmp_path, "empty", [("polyp", (5, 5, 5, 9), False)])
    broken = annotate(tmp_path, "broken", [])
    broken.write_text("<annotation><object>")
    no_number = annotate(tmp_path, "nonumber", [("polyp", ("a", 1, 5, 5), False)])
    orphan = tmp_path / "Annotations" / "orphan.xml"
    orphan.write_text(voc_xml("gone.jpg", []))
    (tmp_path / "classes.yaml").write_text("[polyp]\n")
    stranger = annotate(tmp_path, "stranger", [("tumour", (1, 1, 5, 5), False)])
    errors: list = []
    data = read_format("voc", tmp_path, FormatOptions(), errors)
    reasons = {e["path"]: e["reason"] for e in errors}
    assert "outside the 40x30 image" in reasons[str(outside)]
    assert "empty box" in reasons[str(empty)]
    assert reasons[str(broken)].startswith("malformed XML")
    assert reasons[str(no_number)] == "<xmin> is 'a', not a number"
    assert "its image gone.jpg is not in" in reasons[str(orphan)]
    assert "class 'tumour' is not one of ['polyp']" in reasons[str(stranger)]
    assert len(errors) == 6 and [v.name for v in data.plan.items] == [good.stem]
    with pytest.raises(DatasetError, match="broken.xml: malformed XML"):
        read_format("voc", tmp_path, FormatOptions())
    with pytest.raises(DatasetError, match="data.video_of must be one of auto, prefix, none"):
        read_format("voc", tmp_path, FormatOptions(video_of="video_id"))


def test_data_inspect_detects_a_voc_export_and_counts_what_it_holds(tmp_path):
    """JPEGImages/ sits beside Annotations/ as in a segmentation export, but the XML files
    make it a detection dataset: negatives and difficult regions counted."""
    from endofm.data.inspect import inspect_dataset

    annotate(tmp_path, "case1/0", [("polyp", (2, 3, 12, 8), False),
                                   ("polyp", (20, 10, 30, 20), True)])
    annotate(tmp_path, "case1/1", [])
    summary = inspect_dataset(tmp_path)
    assert summary["format"] == "voc" and summary["num_frames"] == 2
    assert (summary["num_boxes"], summary["negative_frames"], summary["crowd_regions"]) == \
        (1, 1, 1)
    assert summary["errors"] == []
