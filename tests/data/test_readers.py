"""Dataset readers on small hand-made layouts: PolypDiag, CVC-12k, KUMC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endofm.data import DatasetError, read_cvc, read_kumc, read_polypdiag
from endofm.data.datasets.cvc import LEAKFREE_TRAIN, RELEASE_TEST, RELEASE_TRAIN
from endofm.data.synth import voc_xml


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _image(path: Path, width: int = 8, height: int = 6, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width), value, dtype=np.uint8)).save(path)
    return path


# PolypDiag

def test_polypdiag_comma_and_whitespace(tmp_path: Path) -> None:
    for name in ("a.mp4", "b c.mp4", "sub/d.mp4"):
        _touch(tmp_path / "videos" / name)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("a.mp4,1\n\nb c.mp4,0\n")
    (tmp_path / "splits" / "val.txt").write_text("b c.mp4 0\nsub/d.mp4\t1\n")
    train = read_polypdiag(tmp_path, "train")
    val = read_polypdiag(tmp_path, "val")
    assert [(i.path.name, i.label) for i in train] == [("a.mp4", 1), ("b c.mp4", 0)]
    assert [(i.path, i.label) for i in val] == [(tmp_path / "videos" / "b c.mp4", 0),
                                               (tmp_path / "videos" / "sub" / "d.mp4", 1)]


def test_polypdiag_missing_video_and_bad_line(tmp_path: Path) -> None:
    _touch(tmp_path / "videos" / "a.mp4")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("a.mp4,1\nghost.mp4,0\nnolabel.mp4\n")
    with pytest.raises(DatasetError, match="ghost.mp4"):
        read_polypdiag(tmp_path, "val")
    errors: list[dict[str, str]] = []
    items = read_polypdiag(tmp_path, "val", errors=errors)
    assert [i.path.name for i in items] == ["a.mp4"]
    assert errors[0]["path"] == str(tmp_path / "videos" / "ghost.mp4")
    assert errors[1]["path"].endswith("val.txt:3") and "malformed" in errors[1]["reason"]
    with pytest.raises(FileNotFoundError, match="test.txt"):
        read_polypdiag(tmp_path, "test")


# CVC-12k

def _cvc(root: Path, frames: range, size: tuple[int, int] = (8, 6)) -> None:
    for i in frames:
        _image(root / "CVC-ClinicDB" / "Original" / f"{i}.tif", *size)
        _image(root / "CVC-ClinicDB" / "Ground Truth" / f"{i}.tif", *size, value=255)


def test_cvc_files_split(tmp_path: Path) -> None:
    _cvc(tmp_path, range(1, 8))
    (tmp_path / "train.txt").write_text("1 3\n4 2\n")
    (tmp_path / "test.txt").write_text("6 2\n")
    train = read_cvc(tmp_path, "train")
    assert [s.name for s in train] == ["1+3", "4+2"]
    assert [p.name for p in train[0].frames] == ["1.tif", "2.tif", "3.tif"]
    assert train[0].masks[2] == tmp_path / "CVC-ClinicDB" / "Ground Truth" / "3.tif"
    other = tmp_path / "splits"
    other.mkdir()
    (other / "test.txt").write_text("2 5\n")
    assert [s.name for s in read_cvc(tmp_path, "test", split_dir=other)] == ["2+5"]


def test_cvc_release_split_warns_and_leakfree_has_no_overlap(tmp_path: Path) -> None:
    _cvc(tmp_path, range(1, 617), size=(2, 2))
    with pytest.warns(UserWarning, match="7 of its 9 test sequences"):
        release_test = read_cvc(tmp_path, "test", protocol="release")
    assert len(release_test) == 9 and len(read_cvc(tmp_path, "train", protocol="leakfree")) == 13
    with pytest.warns(UserWarning):
        release_train = read_cvc(tmp_path, "train", protocol="release")
    overlap = {s.name for s in release_train} & {s.name for s in release_test}
    assert overlap == {"51+17", "429+19", "178+22", "253+25", "343+21", "68+11", "200+6"}
    leakfree_frames = {p for s in read_cvc(tmp_path, "train", protocol="leakfree")
                       for p in s.frames}
    test_frames = {p for s in read_cvc(tmp_path, "test", protocol="leakfree") for p in s.frames}
    assert leakfree_frames and test_frames and not leakfree_frames & test_frames
    assert len(RELEASE_TRAIN) == 20
    assert set(LEAKFREE_TRAIN) == set(RELEASE_TRAIN) - set(RELEASE_TEST)


def test_cvc_missing_and_mismatched_masks(tmp_path: Path) -> None:
    _cvc(tmp_path, range(1, 5))
    truth = tmp_path / "CVC-ClinicDB" / "Ground Truth"
    (truth / "2.tif").unlink()
    _image(truth / "3.tif", 10, 6)
    (tmp_path / "train.txt").write_text("1 4\n")
    with pytest.raises(DatasetError, match="2.tif: mask file does not exist"):
        read_cvc(tmp_path, "train")
    errors: list[dict[str, str]] = []
    sequence = read_cvc(tmp_path, "train", errors=errors)[0]
    assert [p.name for p in sequence.frames] == ["1.tif", "4.tif"]
    assert [e["path"] for e in errors] == [str(truth / "2.tif"), str(truth / "3.tif")]
    assert "differs" in errors[1]["reason"]


def test_cvc_bad_split_name_and_protocol(tmp_path: Path) -> None:
    _cvc(tmp_path, range(1, 2))
    with pytest.raises(ValueError, match="unknown CVC split"):
        read_cvc(tmp_path, "val")
    with pytest.raises(ValueError, match="unknown CVC protocol"):
        read_cvc(tmp_path, "train", protocol="random")


# KUMC

def _kumc_frame(base: Path, video: str, n: int, xml: str | None) -> None:
    _image(base / "Image" / video / f"{n}.jpg", 40, 30)
    if xml is not None:
        _touch(base / "Annotation" / video / f"{n}.xml", xml.encode())


def test_kumc_boxes_labels_and_negatives(tmp_path: Path) -> None:
    base = tmp_path / "val2019"
    _kumc_frame(base, "7", 10, voc_xml("10.jpg", 30, 40, [("hyperplastic", (1, 2, 11, 12))]))
    _kumc_frame(base, "7", 2, voc_xml("2.jpg", 30, 40, []))
    _kumc_frame(base, "7", 3, voc_xml("3.jpg", 30, 40, [("adenomatous", (0, 0, 40, 30)),
                                                        ("Hyperplastic", (5, 5, 9, 9))]))
    _kumc_frame(base, "12", 1, voc_xml("1.jpg", 30, 40, []))
    videos = read_kumc(tmp_path, "val")
    assert [v.name for v in videos] == ["7", "12"]
    frames = videos[0].frames
    assert [f.image.name for f in frames] == ["2.jpg", "3.jpg", "10.jpg"]
    assert frames[0].boxes.shape == (0, 4) and frames[0].labels.shape == (0,)
    assert frames[1].boxes.dtype == np.float32 and frames[1].labels.dtype == np.int64
    np.testing.assert_array_equal(frames[1].boxes, [[0, 0, 40, 30], [5, 5, 9, 9]])
    np.testing.assert_array_equal(frames[1].labels, [1, 2])
    np.testing.assert_array_equal(frames[2].labels, [2])


@pytest.mark.parametrize(("xml", "reason"), [
    (None, "does not exist"),
    ("<annotation><object>", "malformed XML"),
    (voc_xml("1.jpg", 30, 40, [("lesion", (1, 1, 5, 5))]), "unknown class"),
    (voc_xml("1.jpg", 30, 40, [("adenomatous", (5, 5, 5, 9))]), "empty box"),
    (voc_xml("1.jpg", 30, 40, [("adenomatous", (1, 1, 41, 9))]), "outside"),
])
def test_kumc_bad_annotation(tmp_path: Path, xml: str | None, reason: str) -> None:
    base = tmp_path / "train2019"
    _kumc_frame(base, "1", 1, xml)
    _kumc_frame(base, "1", 2, voc_xml("2.jpg", 30, 40, []))
    with pytest.raises(DatasetError, match=reason):
        read_kumc(tmp_path, "train")
    errors: list[dict[str, str]] = []
    videos = read_kumc(tmp_path, "train", errors=errors)
    assert [f.image.name for f in videos[0].frames] == ["2.jpg"]
    assert errors == [{"path": str(base / "Annotation" / "1" / "1.xml"),
                       "reason": errors[0]["reason"]}]
    assert reason in errors[0]["reason"]


def test_kumc_missing_split(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="test2019"):
        read_kumc(tmp_path, "test")


def test_polypdiag_label_out_of_range(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        _touch(tmp_path / "videos" / name)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("a.mp4,1\nb.mp4,2\nc.mp4,-1\n")
    with pytest.raises(DatasetError, match=r"train.txt:2: label 2 outside \[0, 2\)"):
        read_polypdiag(tmp_path, "train")
    errors: list[dict[str, str]] = []
    assert [i.label for i in read_polypdiag(tmp_path, "train", errors=errors)] == [1]
    assert [e["path"].rsplit(":", 1)[1] for e in errors] == ["2", "3"]
    labels = [i.label for i in read_polypdiag(tmp_path, "train", errors=[], num_classes=3)]
    assert labels == [1, 2]
