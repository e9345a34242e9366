"""The image_masks format: layouts, mask encodings (index, grey, colour, palette, JPEG),
undeclared values, ignore_index and splits."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from endofm.data.datasets.records import DatasetError
from endofm.data.formats import FormatOptions, read_format, select_items
from endofm.data.formats.masks import IGNORE, MaskCodec, background_index


def save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path)
    return path


def frame(path):
    return save(path, np.full((6, 8, 3), 90))


def stripes(values):
    """A 6 x 8 mask: row block k has values[k]."""
    rows = np.repeat(np.arange(len(values)), -(-6 // len(values)))[:6]
    return np.array(values, dtype=object)[rows][:, None].repeat(8, 1)


def test_tree_layout_groups_videos_and_loose_images(tmp_path):
    for n in (10, 2, 1):
        frame(tmp_path / "images" / "video01" / f"frame_{n}.png")
        save(tmp_path / "masks" / "video01" / f"frame_{n}.png", np.zeros((6, 8)))
    frame(tmp_path / "images" / "cju0qkwl35piu0993l0dewei2.jpg")  # Kvasir-SEG: JPEG masks
    save(tmp_path / "masks" / "cju0qkwl35piu0993l0dewei2.jpg", np.zeros((6, 8)))
    frame(tmp_path / "images" / "lonely.png")
    save(tmp_path / "masks" / "orphan.png", np.zeros((6, 8)))
    errors: list = []
    data = read_format("image_masks", tmp_path, FormatOptions(), errors)
    seqs = {s.name: s for s in data.plan.items}
    assert set(seqs) == {"video01", "cju0qkwl35piu0993l0dewei2"}
    assert [f.name for f in seqs["video01"].frames] == ["frame_1.png", "frame_2.png",
                                                       "frame_10.png"]
    assert data.classes.names == ("background", "foreground")
    assert {e["path"] for e in errors} == {str(tmp_path / "images" / "lonely.png"),
                                           str(tmp_path / "masks" / "orphan.png")}


def test_masks_beside_frames_with_a_suffix(tmp_path):
    """CholecSeg8k: frame_80_endo.png with _mask, _color_mask and _watershed_mask."""
    clip = tmp_path / "video01" / "video01_00080"
    for n in (80, 81):
        frame(clip / f"frame_{n}_endo.png")
        for kind in ("mask", "color_mask", "watershed_mask"):
            save(clip / f"frame_{n}_endo_{kind}.png", np.full((6, 8, 3), 50))
    (tmp_path / "classes.yaml").write_text("Black Background: 50\nAbdominal Wall: 11\n")
    options = FormatOptions(mask_suffix="_watershed_mask")
    data = read_format("image_masks", tmp_path, options)
    (seq,) = data.plan.items
    assert seq.name == "video01/video01_00080"
    assert [m.name for m in seq.masks] == ["frame_80_endo_watershed_mask.png",
                                           "frame_81_endo_watershed_mask.png"]
    assert data.masks.decode(seq.masks[0]).max() == 0  # RGB grey 50 → Black Background
    assert background_index(data.classes) == 0


def test_index_grey_colour_and_palette_masks_decode(tmp_path):
    grey = MaskCodec.from_declared({"bg": 0, "liver": 21, "fat": 12}, None)
    mask = save(tmp_path / "g.png", stripes([0, 21, 12]))
    assert np.unique(grey.decode(mask), return_counts=True)[0].tolist() == [0, 1, 2]
    assert grey.decode(mask)[5, 0] == 2
    index = MaskCodec.from_declared({"bg": 0, "a": 1, "b": 2}, None)
    palette = Image.fromarray(stripes([0, 1, 2]).astype(np.uint8), "P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)
    palette.save(tmp_path / "p.png")
    assert index.decode(tmp_path / "p.png")[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    colour = MaskCodec.from_declared({"bg": [0, 0, 0], "grasper": [255, 0, 0],
                                      "hook": [0, 0, 255]}, None)
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[2:4] = (255, 0, 0)
    rgb[4:] = (0, 0, 255)
    assert colour.decode(save(tmp_path / "c.png", rgb))[:, 0].tolist() == [0, 0, 1, 1, 2, 2]
    # lossy JPEG: values move, each pixel takes the nearest declared colour
    big = np.kron(rgb, np.ones((8, 8, 1), np.uint8))
    Image.fromarray(big).save(tmp_path / "c.jpg", quality=70)
    decoded = colour.decode(tmp_path / "c.jpg")
    truth = np.kron(np.array([0, 0, 1, 1, 2, 2])[:, None].repeat(8, 1), np.ones((8, 8)))
    assert (decoded == truth).mean() > 0.98


def test_binary_masks_and_lossy_binary_jpeg(tmp_path):
    binary = MaskCodec.binary()
    png = save(tmp_path / "m.png", stripes([0, 0, 1]))
    assert binary.decode(png)[:, 0].tolist() == [0, 0, 0, 0, 1, 1]
    noisy = np.zeros((48, 48), np.uint8)
    noisy[24:] = 255
    Image.fromarray(noisy).save(tmp_path / "m.jpg", quality=60)
    decoded = binary.decode(tmp_path / "m.jpg")
    assert (decoded == (noisy > 0)).mean() > 0.98


def test_undeclared_value_is_an_error_naming_it_unless_ignored(tmp_path):
    mask = save(tmp_path / "m.png", stripes([0, 21, 99]))
    codec = MaskCodec.from_declared({"bg": 0, "liver": 21}, None)
    with pytest.raises(DatasetError, match=r"m.png: mask values \[99\] are not declared "
                                           r"\(declared: bg: 0, liver: 21\)"):
        codec.decode(mask)
    ignoring = MaskCodec.from_declared({"bg": 0, "liver": 21}, 99)
    assert ignoring.decode(mask)[:, 0].tolist() == [0, 0, 1, 1, IGNORE, IGNORE]
    assert ignoring.values_seen(mask) == {0, 21, 99}


def test_split_files_list_sequences_else_test_is_carved_by_video(tmp_path):
    for v in range(5):
        for n in range(3):
            frame(tmp_path / "images" / f"video{v}" / f"{n}.png")
            save(tmp_path / "masks" / f"video{v}" / f"{n}.png", np.zeros((6, 8)))
    data = read_format("image_masks", tmp_path, FormatOptions())
    test = select_items(data, "test", 0.4, seed=1)
    train = select_items(data, "train", 0.4, seed=1)
    assert len(test) == 2 and len(train) == 3
    assert not {s.name for s in test} & {s.name for s in train}
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "test.txt").write_text("video4\n")
    (tmp_path / "splits" / "train.txt").write_text("video0\nvideo1\nvideo2\nvideo3\n")
    data = read_format("image_masks", tmp_path, FormatOptions())
    assert [s.name for s in select_items(data, "test", 0.4, 0)] == ["video4"]


def cvat_export(root, labelmap="background:0,0,0::\ngrasper:255,0,0::\nliver:0,0,255::\n"):
    """A CVAT "Segmentation mask" export of three JPEG frames: palette masks whose indices
    are not labelmap.txt's order (index 1 is blue: liver)."""
    palette = [0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * (256 * 3 - 9)
    for n in range(3):
        frame(root / "JPEGImages" / f"frame_{n:06d}.jpg")
        for folder in ("SegmentationClass", "SegmentationObject"):
            mask = Image.fromarray(stripes([0, 1, 2]).astype(np.uint8), "P")
            mask.putpalette(palette)
            (root / folder).mkdir(parents=True, exist_ok=True)
            mask.save(root / folder / f"frame_{n:06d}.png")
    (root / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + labelmap)
    (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Segmentation" / "default.txt").write_text(
        "frame_000000\nframe_000001\nframe_000002\n")


def test_cvat_segmentation_mask_export_reads_its_labelmap_and_colours(tmp_path):
    cvat_export(tmp_path)
    data = read_format("image_masks", tmp_path, FormatOptions())
    assert data.classes.names == ("background", "grasper", "liver")
    assert [s.name for s in data.plan.items] == [f"frame_{n:06d}" for n in range(3)]
    assert data.plan.given() == set()  # default.txt names no split: test is carved
    (seq,) = data.plan.items[:1]
    assert data.masks.decode(seq.masks[0])[:, 0].tolist() == [0, 0, 2, 2, 1, 1]
    sets = tmp_path / "ImageSets" / "Segmentation"
    (sets / "train.txt").write_text("frame_000000\n\nframe_000001\n")
    (sets / "test.txt").write_text("frame_000002\n")
    data = read_format("image_masks", tmp_path, FormatOptions())
    assert [s.name for s in select_items(data, "test", 0.5, 0)] == ["frame_000002"]
    (sets / "test.txt").write_text("frame_000002\n\nframe_000009\n")  # the file's line 3
    with pytest.raises(DatasetError, match=r"Segmentation/test.txt:3: 'frame_000009' names no"):
        read_format("image_masks", tmp_path, FormatOptions())
    (sets / "train.txt").write_text("frame_000000\nframe_000002\n")
    (sets / "test.txt").write_text("frame_000002\n")
    with pytest.raises(DatasetError, match=r"test.txt:1: frame_000002 is listed in both train "
                                           r"and test"):
        read_format("image_masks", tmp_path, FormatOptions())


@pytest.mark.parametrize(("labelmap", "problem"), [
    ("background:0,0,0::\nliver 0 0 255\n", r"labelmap.txt:3: 'liver 0 0 255' is not a "
                                              r"labelmap line 'name:r,g,b:parts:actions'"),
    ("background:0,0,0::\nliver:0,0,300::\n", r"class 'liver': value \[0, 0, 300\]"),
    ("background:0,0,0::\nliver:0,0,255::\nliver:1,1,1::\n",
     r"labelmap.txt:4: class 'liver' is declared twice"),
    ("background:0,0,0::\nliver:0,0,0::\n", r"two classes share a colour"),
    ("# nothing\n", r"labelmap declares no class"),
])
def test_a_broken_labelmap_is_one_error_naming_the_line(tmp_path, labelmap, problem):
    cvat_export(tmp_path, labelmap)
    with pytest.raises(DatasetError, match=problem):
        read_format("image_masks", tmp_path, FormatOptions())


def test_an_export_without_its_images_says_so(tmp_path):
    cvat_export(tmp_path)
    for image in (tmp_path / "JPEGImages").iterdir():
        image.unlink()
    (tmp_path / "JPEGImages").rmdir()
    with pytest.raises(DatasetError, match=r"SegmentationClass/ holds masks but there is no "
                                           r"images/ or JPEGImages/ folder"):
        read_format("image_masks", tmp_path, FormatOptions())


def test_named_folders_and_a_folder_per_video(tmp_path):
    """SUN-SEG names its folders Frame/ and GT/; EndoVis 2018 has seq_N/left_frames/ and
    seq_N/labels/, each sequence folder one video."""
    for case in ("case2", "case10"):
        for n in (3, 1):
            frame(tmp_path / "sun" / "Frame" / case / f"{case}_{n}.jpg")
            save(tmp_path / "sun" / "GT" / case / f"{case}_{n}.png", np.zeros((6, 8)))
    options = FormatOptions(image_folder="Frame", mask_folder="GT")
    data = read_format("image_masks", tmp_path / "sun", options)
    assert [(s.name, [f.name for f in s.frames]) for s in data.plan.items] == [
        ("case10", ["case10_1.jpg", "case10_3.jpg"]), ("case2", ["case2_1.jpg", "case2_3.jpg"])]
    for seq in ("seq_1", "seq_2"):
        for n in (10, 2):
            frame(tmp_path / "endovis" / seq / "left_frames" / f"frame{n:03d}.png")
            save(tmp_path / "endovis" / seq / "labels" / f"frame{n:03d}.png", np.zeros((6, 8)))
    options = FormatOptions(image_folder="*/left_frames", mask_folder="*/labels")
    data = read_format("image_masks", tmp_path / "endovis", options)
    assert [(s.name, [f.name for f in s.frames]) for s in data.plan.items] == [
        ("seq_1", ["frame002.png", "frame010.png"]), ("seq_2", ["frame002.png", "frame010.png"])]
    assert data.plan.items[0].masks[0] == tmp_path / "endovis/seq_1/labels/frame002.png"


@pytest.mark.parametrize(("image_folder", "mask_folder", "problem"), [
    ("Frames", "GT", r"sun/Frames: no such folder \(data.image_folder is relative"),
    ("Frame", None, r"no masks/ or labels/ or annotations/ or SegmentationClass/ folder "
                    r"here: set data.mask_folder as well"),
    ("*/Frame", "GT", r"both need the \* of a video's folder"),
    ("*/Fr*", "*/GT", r"at most one '\*', as a whole folder name"),
    ("*/left_frames", "*/labels", r"no folder matches data.image_folder=\*/left_frames"),
])
def test_folder_settings_that_do_not_fit_are_one_error(tmp_path, image_folder, mask_folder,
                                                        problem):
    frame(tmp_path / "sun" / "Frame" / "case1" / "case1_1.jpg")
    save(tmp_path / "sun" / "GT" / "case1" / "case1_1.png", np.zeros((6, 8)))
    with pytest.raises(DatasetError, match=problem):
        read_format("image_masks", tmp_path / "sun",
                    FormatOptions(image_folder=image_folder, mask_folder=mask_folder))


def test_a_video_folder_without_its_mask_folder_is_named(tmp_path):
    frame(tmp_path / "seq_1" / "left_frames" / "frame000.png")
    save(tmp_path / "seq_1" / "labels" / "frame000.png", np.zeros((6, 8)))
    frame(tmp_path / "seq_2" / "left_frames" / "frame000.png")
    with pytest.raises(DatasetError, match=r"seq_2/labels: no mask folder for the frames in "
                                           r".*seq_2/left_frames"):
        read_format("image_masks", tmp_path, FormatOptions(image_folder="*/left_frames",
                                                           mask_folder="*/labels"))
