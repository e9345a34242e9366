"""The phase commands' parser choices agree with the library; ``data inspect`` on a phase
dataset lists each video's phases with their durations and the split rule."""

from __future__ import annotations

from pathlib import Path

from endofm.cli import phase as phase_cli
from endofm.cli.main import main
from endofm.data import inspect
from endofm.data.phase import LAYOUTS
from endofm.data.phase.synth import ProcedureSpec, synth_procedures
from endofm.tasks.phase.metrics import RelaxedMode


def test_spelled_out_choices_match_the_library() -> None:
    assert phase_cli.RELAXED_MODES == tuple(RelaxedMode)
    assert phase_cli.LAYOUTS == LAYOUTS == inspect.PHASE_FORMATS


def test_inspect_phase_dataset(tmp_path: Path, capsys) -> None:
    spec = ProcedureSpec(num_phases=2, alike=(0, 1), phase_s=(3, 3), size=16, fps=5.0)
    root = synth_procedures(tmp_path / "c80", num_videos=2, seed=0, spec=spec)
    (root / "phase_annotations" / "video05-phase.txt").write_text("Frame\tPhase\n0\tBad\n")
    assert main(["data", "inspect", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "format: cholec80" in out
    assert "video01 (6 s, 5 rows/s): Preparation 3s, CalotTriangleDissection 3s" in out
    assert "split:            the cholec80 proportions over the 2 videos" in out
    assert "errors:           1" in out
    assert "video05-phase.txt: annotation file for a video that does not exist" in out
