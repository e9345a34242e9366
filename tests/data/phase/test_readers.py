"""Phase dataset readers: the Cholec80 / AutoLaparo / segments layouts, annotation rates,
names or indices, splits, and every bad annotation as one clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from endofm.data.phase import (
    AUTOLAPARO_PHASES,
    CHOLEC80_PHASES,
    AnnotationError,
    read_phase_dataset,
    split_videos,
)
from endofm.data.phase.inspect import inspect_phase_dataset
from endofm.data.phase.synth import ProcedureSpec, synth_procedures
from endofm.data.video import write_video

SPEC = ProcedureSpec(num_phases=3, alike=(0, 2), phase_s=(3, 5), size=16, fps=5.0)


@pytest.fixture(scope="module")
def cholec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_procedures(tmp_path_factory.mktemp("cholec"), num_videos=3, seed=1, spec=SPEC)


def copy_of(root: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(root, tmp_path / "copy"))


def phase_file(root: Path, name: str = "video01") -> Path:
    return root / "phase_annotations" / f"{name}-phase.txt"


def test_cholec80_as_downloaded(cholec: Path) -> None:
    data = read_phase_dataset(cholec)
    assert data.layout == "cholec80" and data.phases == CHOLEC80_PHASES
    assert [v.name for v in data.videos] == ["video01", "video02", "video03"]
    video = data.videos[0]
    rows = phase_file(cholec).read_text().splitlines()[1:]
    assert video.phases.rate == 5.0 and len(video.phases.labels) == len(rows)
    first = rows[0].split("\t")[1]
    assert video.phases.labels[0] == CHOLEC80_PHASES.index(first)
    assert video.tools is not None and video.tools.rate == 1.0
    assert video.tools.names[0] == "Grasper" and video.tools.present.shape[1] == 7


def test_one_row_per_second_and_indices_read_alike(cholec: Path, tmp_path: Path) -> None:
    root = copy_of(cholec, tmp_path)
    path = phase_file(root)
    rows = [r.split("\t") for r in path.read_text().splitlines()[1:]]
    per_second = [f"{f}\t{CHOLEC80_PHASES.index(p)}" for f, p in rows[::5]]  # Frame 0, 5, 10…
    path.write_text("Frame\tPhase\n" + "\n".join(per_second) + "\n")
    got = read_phase_dataset(root).videos[0].phases
    want = read_phase_dataset(cholec).videos[0].phases
    assert got.rate == 1.0
    np.testing.assert_array_equal(got.resample(1.0), want.resample(1.0))
    # a 1/s file whose Frame column counts seconds (0, 1, 2, …) is recognised by its length
    seconds = [f"{i}\t{row.split(chr(9))[1]}" for i, row in enumerate(per_second)]
    path.write_text("Frame\tPhase\n" + "\n".join(seconds) + "\n")
    np.testing.assert_array_equal(read_phase_dataset(root).videos[0].phases.resample(1.0),
                                  want.resample(1.0))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda rows: rows[:3] + ["3\tNotAPhase"] + rows[4:], "line 5: unknown phase 'NotAPhase'"),
    (lambda rows: rows[:5] + rows[9:], "line 7: frames 5–8 are missing from the annotation"),
    (lambda rows: rows[2:], "frames 0–1 are missing from the annotation"),
    (lambda rows: rows[:40], "frames 8.0–"),
    (lambda rows: rows[:3] + ["3\t9"] + rows[4:], "line 5: unknown phase '9'"),
])
def test_bad_phase_file_is_one_clear_error(cholec: Path, tmp_path: Path, edit, message) -> None:
    root = copy_of(cholec, tmp_path)
    path = phase_file(root)
    rows = path.read_text().splitlines()[1:]
    path.write_text("Frame\tPhase\n" + "\n".join(edit(rows)) + "\n")
    with pytest.raises(AnnotationError) as info:
        read_phase_dataset(root)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_annotation_without_its_video(cholec: Path, tmp_path: Path) -> None:
    root = copy_of(cholec, tmp_path)
    shutil.copy(phase_file(root), phase_file(root, "video07"))
    with pytest.raises(AnnotationError, match="video07-phase.txt: annotation file for a video "
                                              "that does not exist"):
        read_phase_dataset(root)
    # scoring predictions needs no video
    assert len(read_phase_dataset(root, need_videos=False).videos) == 4


def test_errors_collected_for_inspect(cholec: Path, tmp_path: Path) -> None:
    root = copy_of(cholec, tmp_path)
    shutil.copy(phase_file(root), phase_file(root, "video07"))
    (root / "videos" / "video03.mp4").rename(root / "videos" / "video09.mp4")
    summary = inspect_phase_dataset(root)
    reasons = sorted(e["reason"] for e in summary["errors"])
    assert reasons == ["annotation file for a video that does not exist"] * 2 + [
        "video without an annotation (not used)"]
    assert summary["num_videos"] == 2
    video = summary["videos"]["video01"]
    assert [s["phase"] for s in video["segments"]] == list(CHOLEC80_PHASES[:3])
    assert sum(video["phase_s"].values()) == pytest.approx(video["duration_s"])


def autolaparo(tmp_path: Path, labels: list[int], seconds: int = 6) -> Path:
    root = tmp_path / "autolaparo"
    frames = np.zeros((seconds * 5, 16, 16, 3), dtype=np.uint8)
    for n in (1, 2):
        write_video(root / "videos" / f"{n:02d}.mp4", frames, 5.0)
        rows = "".join(f"{i + 1}\t{p}\n" for i, p in enumerate(labels))
        (root / "labels").mkdir(parents=True, exist_ok=True)
        (root / "labels" / f"label_{n:02d}.txt").write_text("Frame\tPhase\n" + rows)
    return root


def test_autolaparo_layout(tmp_path: Path) -> None:
    data = read_phase_dataset(autolaparo(tmp_path, [1, 1, 2, 2, 7, 7]))
    assert data.layout == "autolaparo" and data.phases == AUTOLAPARO_PHASES
    np.testing.assert_array_equal(data.videos[0].phases.labels, [0, 0, 1, 1, 6, 6])
    assert data.videos[0].phases.rate == 1.0
    split = split_videos(data.videos, data.layout)
    assert split.train == ("01",) and split.test == ("02",) and "proportions" in split.rule


def test_autolaparo_phase_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(AnnotationError, match=r"label_01.txt: line 3: unknown phase '8'"):
        read_phase_dataset(autolaparo(tmp_path, [1, 8, 2, 2, 3, 3]))


def segments_csv(tmp_path: Path, text: str) -> Path:
    root = tmp_path / "segs"
    frames = np.zeros((50, 16, 16, 3), dtype=np.uint8)
    for name in ("a", "b"):
        write_video(root / "videos" / f"{name}.mp4", frames, 5.0)
    (root / "segments.csv").write_text("video,start_s,end_s,phase\n" + text)
    return root


def test_segments_csv(tmp_path: Path) -> None:
    root = segments_csv(tmp_path, "a,0,4,cut\na,4,10,sew\nb.mp4,0,10,sew\n")
    data = read_phase_dataset(root)
    assert data.phases == ("cut", "sew")
    a = data.videos[0]
    np.testing.assert_array_equal(a.phases.resample(1.0), [0] * 4 + [1] * 6)
    assert data.videos[1].name == "b"


def test_segments_csv_from_a_spreadsheet(tmp_path: Path) -> None:
    """Excel in a decimal-comma locale: a byte-order mark, semicolons, CRLF line ends."""
    root = segments_csv(tmp_path, "")
    (root / "segments.csv").write_bytes("\ufeffvideo;start_s;end_s;phase\r\na;0;4;cut\r\n"
                                        "a;4;10;sew\r\nb;0;10;sew\r\n".encode("utf-8"))
    data = read_phase_dataset(root)
    assert data.phases == ("cut", "sew") and [v.name for v in data.videos] == ["a", "b"]
    (root / "segments.csv").write_text("clip,from,to,phase\na,0,10,cut\n")
    with pytest.raises(Exception, match="a classification manifest's header starts with path"):
        read_phase_dataset(root)


@pytest.mark.parametrize(("text", "message"), [
    ("a,0,4,cut\na,3,10,sew\nb,0,10,sew\n", "line 3: video a: overlaps line 2"),
    ("a,0,4,cut\na,5,10,sew\nb,0,10,sew\n", "line 3: video a: gap 4–5 s after line 2"),
    ("a,1,10,cut\nb,0,10,sew\n", "line 2: video a: gap 0–1 s"),
    ("a,0,10,cut\nb,0,10,stitch\nc,0,10,cut\n", "video that does not exist"),
    ("a,0,10,cut\nb,0,5,cut\n", "frames 5.0–10.0 s are missing"),
])
def test_bad_segments(tmp_path: Path, text: str, message: str) -> None:
    root = segments_csv(tmp_path, text)
    with pytest.raises(AnnotationError) as info:
        read_phase_dataset(root, phases=("cut", "sew") if "stitch" not in text else ())
    assert str(root / "segments.csv") in str(info.value) and message in str(info.value)


def test_standard_split_by_number(cholec: Path, tmp_path: Path) -> None:
    data = read_phase_dataset(cholec)
    videos = [v.__class__(f"video{n:02d}", n, v.path, v.phases, v.annotation)
              for n, v in zip((5, 35, 60), data.videos, strict=True)]
    split = split_videos(videos, "cholec80")
    assert (split.train, split.val, split.test) == (("video05", "video35"), ("video35",),
                                                    ("video60",))
    assert split.names("train_no_val") == ("video05",) and "standard" in split.rule
    few = split_videos(data.videos, "cholec80")  # videos 1–3: all "train" by number
    assert few.train == ("video01", "video02") and few.test == ("video03",)


def test_bad_tool_value(cholec: Path, tmp_path: Path) -> None:
    root = copy_of(cholec, tmp_path)
    path = root / "tool_annotations" / "video01-tool.txt"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t2"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AnnotationError, match=r"video01-tool.txt: line 3: tool presence must "
                                              r"be 0 or 1"):
        read_phase_dataset(root)


def test_a_bad_annotation_is_a_dataset_error_raised_or_collected(tmp_path: Path) -> None:
    """Phase annotations report like every dataset reader: one ``DatasetError`` (an
    ``AnnotationError``) naming the file, or an entry of ``errors`` when a list is given."""
    from endofm.data.datasets.records import DatasetError
    from endofm.data.phase.labels import AnnotationError, report

    where = tmp_path / "video01-phase.txt"
    with pytest.raises(AnnotationError, match=r"video01-phase\.txt: no rows") as info:
        report(None, where, "no rows")
    assert isinstance(info.value, DatasetError) and info.value.reason == "no rows"
    errors: list[dict[str, str]] = []
    report(errors, where, "no rows")
    assert errors == [{"path": str(where), "reason": "no rows"}]
