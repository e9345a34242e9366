"""``endofm evaluate phase --predictions``: prediction files at any rate, names or indices,
scored like the metrics computed directly; missing files are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from endofm.cli.main import main
from endofm.data.phase import CHOLEC80_PHASES, AnnotationError, read_phase_dataset
from endofm.data.phase.synth import ProcedureSpec, synth_procedures
from endofm.tasks.phase.metrics import score_videos
from endofm.tasks.phase.scoring import score_predictions

SPEC = ProcedureSpec(num_phases=3, alike=(0, 2), phase_s=(3, 5), size=16, fps=5.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth_procedures(tmp_path_factory.mktemp("phase"), num_videos=4, seed=2, spec=SPEC)


def shifted(labels: np.ndarray, rows: int) -> np.ndarray:
    """The labels with every transition ``rows`` later."""
    return np.concatenate([np.full(rows, labels[0]), labels[:-rows]])


def write_predictions(folder: Path, data: Path, step: int, as_index: bool) -> dict:
    """Each test video's truth shifted by 3 rows, written every ``step`` frames."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for video in read_phase_dataset(data).videos:
        pred = shifted(video.phases.labels, 3)
        rows = [f"{f}\t{p if as_index else CHOLEC80_PHASES[p]}"
                for f, p in zip(range(0, len(pred), step), pred[::step], strict=True)]
        (folder / f"{video.name}-phase.txt").write_text("Frame\tPhase\n" + "\n".join(rows))
        truth[video.name] = (video.phases.labels, pred)
    return truth


def test_scores_match_the_metrics_on_the_same_rows(data: Path, tmp_path: Path) -> None:
    truth = write_predictions(tmp_path / "pred", data, 1, as_index=False)
    out = tmp_path / "scores"
    assert main(["evaluate", "phase", "--predictions", str(tmp_path / "pred"), "--data",
                 str(data), "--output", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["num_videos"] == 2  # videos 3, 4 of 4
    want = score_videos([(n, *truth[n]) for n in ("video03", "video04")], 5.0, CHOLEC80_PHASES)
    for key in ("accuracy", "relaxed_accuracy", "jaccard", "relaxed_jaccard", "edit", "f1@50"):
        assert metrics[key] == pytest.approx(want[key])
    assert metrics["accuracy"] < 1.0 and metrics["relaxed_accuracy"] == 1.0
    assert (out / "per_video.csv").read_text().startswith("video,accuracy,relaxed_accuracy")


def test_one_row_per_second_with_indices(data: Path, tmp_path: Path) -> None:
    write_predictions(tmp_path / "pred", data, 5, as_index=True)
    result = score_predictions(tmp_path / "pred", data, "all")
    assert result["num_videos"] == 4 and 0.7 < result["accuracy"] < 1.0


def test_missing_prediction_file(data: Path, tmp_path: Path) -> None:
    write_predictions(tmp_path / "pred", data, 1, as_index=False)
    (tmp_path / "pred" / "video04-phase.txt").unlink()
    with pytest.raises(AnnotationError, match="no prediction file for 1 video.*video04"):
        score_predictions(tmp_path / "pred", data)


def test_short_prediction_file(data: Path, tmp_path: Path) -> None:
    write_predictions(tmp_path / "pred", data, 1, as_index=False)
    path = tmp_path / "pred" / "video03-phase.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:20]))
    with pytest.raises(AnnotationError, match="video03-phase.txt: the file covers 3.8 s"):
        score_predictions(tmp_path / "pred", data)


def test_standard_validation_videos_select(tmp_path: Path) -> None:
    from endofm.config import load_config
    from endofm.tasks.phase.config import PhaseConfig
    from endofm.tasks.phase.task import PhaseTask

    root = synth_procedures(tmp_path / "six", num_videos=6, seed=0, spec=SPEC)
    task = PhaseTask(load_config(PhaseConfig))
    assert task.splits.standard_val(root)  # 6 videos: 3 train, the last of them validation
    carve = PhaseTask(load_config(PhaseConfig, None, ["data.validation=carve"]))
    fixed = PhaseTask(load_config(PhaseConfig, None, ["protocol.selection=fixed"]))
    assert not carve.splits.standard_val(root) and not fixed.splits.standard_val(root)
    assert carve.given_split(root, "val") is None
    few = synth_procedures(tmp_path / "four", num_videos=4, seed=0, spec=SPEC)
    assert not task.splits.standard_val(few)  # 2 train, none of them validation: a carve-out


def test_both_phase_tasks_hold_the_validation_videos_out_of_train(tmp_path: Path) -> None:
    """The temporal model's task and stage 1's window task read the same split: with the
    dataset's validation videos selecting, ``train`` leaves them out; with a carve-out, not."""
    from endofm.config import load_config
    from endofm.tasks.phase.config import PhaseConfig
    from endofm.tasks.phase.task import PhaseTask
    from endofm.tasks.phase.window import PhaseWindowConfig, PhaseWindowTask

    root = synth_procedures(tmp_path / "six", num_videos=6, seed=0, spec=SPEC)
    standard = PhaseWindowTask(load_config(PhaseWindowConfig))
    train = [v.name for v in standard.read_items(root, "train")]
    val = [v.name for v in standard.given_split(root, "val")]
    assert val and not set(val) & set(train)
    carve = PhaseWindowTask(load_config(PhaseWindowConfig, None, ["data.validation=carve"]))
    assert carve.given_split(root, "val") is None
    assert set(val) <= {v.name for v in carve.read_items(root, "train")}
    temporal = PhaseTask(load_config(PhaseConfig))
    assert [v.name for v in temporal.splits.videos(root, "train")] == train
