"""``inspect_dataset``: exact counts on the sample data and every broken item listed."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from endofm.data.inspect import count_decoded_frames, inspect_dataset
from endofm.data.synth import SCALES, voc_xml
from endofm.data.video import write_video

SMALL = SCALES["small"]


def _video(path: Path, frames: int = 6) -> Path:
    rng = np.random.default_rng(frames)
    return write_video(path, rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8))


def _image(path: Path, width: int = 16, height: int = 12, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), value, dtype=np.uint8)).save(path)
    return path


def _broken_files(folder: Path, good: Path) -> dict[str, Path]:
    """Corrupt, empty, text-as-video and truncated copies next to ``good``."""
    data = good.read_bytes()
    broken = {"corrupt": folder / "corrupt.mp4", "empty": folder / "empty.mp4",
              "text": folder / "notes.mp4", "truncated": folder / "truncated.mp4"}
    broken["corrupt"].write_bytes(np.random.default_rng(0).bytes(4000))
    broken["empty"].write_bytes(b"")
    broken["text"].write_text("this is not a video\n")
    broken["truncated"].write_bytes(data[: len(data) // 2])
    return broken


def test_sample_data_counts_are_exact(sample_data: dict[str, Path]) -> None:
    videos = inspect_dataset(sample_data["videos"])
    assert (videos["format"], videos["num_videos"], videos["num_frames"], videos["errors"]) == (
        "videos", 2 * SMALL.pretrain_videos_per_source,
        2 * SMALL.pretrain_videos_per_source * round(SMALL.pretrain_seconds * SMALL.fps), [])
    polypdiag = inspect_dataset(sample_data["polypdiag"])
    total = SMALL.polypdiag_train + SMALL.polypdiag_val
    assert polypdiag["num_videos"] == total
    assert polypdiag["num_frames"] == total * SMALL.polypdiag_frames
    assert polypdiag["label_counts"] == {"0": total // 2, "1": total // 2}
    assert polypdiag["splits"]["val"]["num_videos"] == SMALL.polypdiag_val
    cvc = inspect_dataset(sample_data["cvc"], "cvc")
    lengths = [int(line.split()[1]) for name in ("train.txt", "test.txt")
               for line in (sample_data["cvc"] / name).read_text().splitlines()]
    assert cvc["num_videos"] == SMALL.cvc_train + SMALL.cvc_test == len(lengths)
    assert cvc["num_frames"] == cvc["num_masks"] == sum(lengths)
    kumc = inspect_dataset(sample_data["kumc"])
    xml = "".join(p.read_text() for p in sample_data["kumc"].rglob("*.xml"))
    assert kumc["num_videos"] == sum(SMALL.kumc_videos)
    assert kumc["num_frames"] == sum(SMALL.kumc_videos) * SMALL.kumc_frames
    assert kumc["num_boxes"] == xml.count("<object>") == sum(kumc["label_counts"].values())
    assert kumc["label_counts"]["adenomatous"] == len(re.findall("<name>adenomatous<", xml))
    assert all(r["errors"] == [] for r in (polypdiag, cvc, kumc))


def test_videos_folder_lists_every_broken_file(tmp_path: Path) -> None:
    good = _video(tmp_path / "a" / "good.mp4", frames=7)
    broken = _broken_files(tmp_path / "a", good)
    (tmp_path / "readme.txt").write_text("hello")
    frames = tmp_path / "b" / "clip"
    for i in range(3):
        _image(frames / f"{i}.png")
    summary = inspect_dataset(tmp_path, "videos")
    assert summary["num_videos"] == 2 and summary["num_frames"] == 7 + 3
    paths = {e["path"] for e in summary["errors"]}
    assert paths == {str(p) for p in broken.values()} | {str(tmp_path / "readme.txt")}
    assert len(summary["errors"]) == 5


def test_truncated_video_with_header_is_an_error(tmp_path: Path) -> None:
    source = _video(tmp_path / "src.mp4", frames=40)
    faststart = tmp_path / "fast.mp4"
    with av.open(str(source)) as src, av.open(str(faststart), "w",
                                              options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(video=0):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)
    assert count_decoded_frames(faststart) == 40
    cut = tmp_path / "cut.mp4"
    data = faststart.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    errors = inspect_dataset(tmp_path, "videos")["errors"]
    assert [e["path"] for e in errors] == [str(cut)]


def test_polypdiag_broken_and_missing_videos(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    good = _video(videos / "good.mp4")
    broken = _broken_files(videos, good)
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text(
        "good.mp4,1\n" + "".join(f"{p.name},0\n" for p in broken.values()) + "gone.mp4,0\n")
    (tmp_path / "splits" / "val.txt").write_text("good.mp4 1\n")
    _video(videos / "extra" / "unlisted.mp4")
    summary = inspect_dataset(tmp_path)
    assert summary["format"] == "polypdiag"
    assert (summary["num_videos"], summary["num_frames"]) == (1, 6)
    assert summary["label_counts"] == {"1": 2} and summary["unlisted_videos"] == 1
    assert {e["path"] for e in summary["errors"]} == (
        {str(p) for p in broken.values()} | {str(videos / "gone.mp4")})


def test_cvc_broken_items(tmp_path: Path) -> None:
    original = tmp_path / "CVC-ClinicDB" / "Original"
    truth = tmp_path / "CVC-ClinicDB" / "Ground Truth"
    for i in range(1, 6):
        _image(original / f"{i}.tif")
        _image(truth / f"{i}.tif", value=255)
    (truth / "2.tif").unlink()
    _image(truth / "3.tif", width=20)
    (original / "4.tif").write_bytes(b"not an image")
    _image(truth / "9.tif")
    (tmp_path / "train.txt").write_text("1 3\n")
    (tmp_path / "test.txt").write_text("4 3\n")
    summary = inspect_dataset(tmp_path)
    assert summary["format"] == "cvc"
    assert (summary["num_videos"], summary["num_frames"], summary["num_masks"]) == (2, 4, 2)
    assert [e["path"] for e in summary["errors"]] == [
        str(original / "4.tif"), str(truth / "2.tif"), str(truth / "3.tif"),
        str(truth / "9.tif"), str(original / "6.tif")]


def test_kumc_broken_items(tmp_path: Path) -> None:
    base = tmp_path / "test2019"
    ann = base / "Annotation" / "3"
    for n in range(1, 6):
        _image(base / "Image" / "3" / f"{n}.jpg", 40, 30)
    ann.mkdir(parents=True)
    (ann / "1.xml").write_text(voc_xml("1.jpg", 30, 40, [("adenomatous", (1, 1, 9, 9)),
                                                          ("hyperplastic", (2, 2, 8, 8))]))
    (ann / "2.xml").write_text(voc_xml("2.jpg", 30, 40, []))
    (ann / "3.xml").write_text("<annotation><object>")
    (ann / "4.xml").write_text(voc_xml("4.jpg", 30, 40, [("adenomatous", (1, 1, 50, 9))]))
    (ann / "9.xml").write_text(voc_xml("9.jpg", 30, 40, []))
    (base / "Image" / "3" / "6.jpg").write_bytes(b"\xff\xd8 broken")
    summary = inspect_dataset(tmp_path)
    assert summary["format"] == "kumc"
    assert (summary["num_videos"], summary["num_frames"], summary["num_boxes"]) == (1, 5, 2)
    assert summary["label_counts"] == {"adenomatous": 1, "hyperplastic": 1}
    assert summary["negative_frames"] == 1
    assert [e["path"] for e in summary["errors"]] == [
        str(ann / "3.xml"), str(ann / "4.xml"), str(ann / "5.xml"),
        str(base / "Image" / "3" / "6.jpg"), str(ann / "9.xml")]


def test_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a recognised dataset"):
        inspect_dataset(tmp_path)
    with pytest.raises(ValueError, match="not a videos dataset"):
        inspect_dataset(tmp_path, "videos")
    with pytest.raises(ValueError, match="not a cvc dataset"):
        inspect_dataset(tmp_path, "cvc")
    with pytest.raises(FileNotFoundError):
        inspect_dataset(tmp_path / "missing")


def test_inspect_reports_labels_the_readers_reject(tmp_path: Path) -> None:
    _video(tmp_path / "videos" / "a.mp4")
    _video(tmp_path / "videos" / "b.mp4")
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "train.txt").write_text("a.mp4,1\nb.mp4,2\n")
    summary = inspect_dataset(tmp_path)
    assert summary["label_counts"] == {"1": 1}
    assert [(Path(e["path"]).name, e["reason"].split(" in ")[0]) for e in summary["errors"]] == [
        ("train.txt:2", "label 2 outside [0, 2)")]
