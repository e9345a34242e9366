"""Every option of every inference command is honoured, or refused in one line.

For each command (extract, attention, predict TASK) the table says what each of its options
does: ``output`` — changing it changes the files the command writes (reports left out: they
echo the settings); ``recorded`` — it changes what ``run.json`` records (settings or runtime)
without having to change the numbers; ``refused`` — the task has no use for it and the command
stops with one line. An option the parser accepts that the table does not list fails the test,
so a new option cannot be left unchecked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from endofm.cli.main import build_parser, main
from endofm.data import write_video
from tests.tiny_inputs import tiny_phase_model

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"
RELEASED = ASSETS / "endo_fm_tiny.pth"  # 96 wide, 4 heads, 64 px, 4 frames
POLYPDIAG = ASSETS / "polypdiag_tiny.pth"

# Options every command has that are not about what it computes; --runtime onnx runs an
# exported file and has its own tests (tests/deploy/test_runtime.py: the same outputs).
NOT_SETTINGS = {"--help", "--quiet", "--debug", "--checkpoint", "--output", "--runtime"}

RUNTIME = {"--batch-size": ("3", "2"), "--workers": ("0", "1"), "--device": ("cpu", "auto")}

# What every windowed command has: the frame rate of frame folders, the precision, the runtime.
SHARED = {
    "--fps": ("output", "30", "25"),
    "--precision": ("recorded", "fp32", "bf16"),
    **{k: ("recorded", *v) for k, v in RUNTIME.items()},
}

BACKBONE = {
    **SHARED,
    "--num-heads": ("output", "4", "2"),
    "--num-frames": ("output", "4", "2"),
    "--frame-step": ("output", "2", "3"),
    "--stride": ("output", "8", "4"),
    "--size": ("output", "32", "48"),
    "--no-crop": ("output", None, ""),
    "--normalization": ("output", "kinetics", "imagenet"),
}

# Segmentation and detection models record their head count and frame size, and decide per
# frame: these options mean nothing for them.
DENSE_REFUSED = {
    "--num-heads": ("refused", None, "2"),
    "--size": ("refused", None, "64"),
    "--smooth": ("refused", None, "3"),
}

TABLE = {
    "extract": {**BACKBONE, "--features": ("output", "cls", "mean_patch"),
                "--dtype": ("output", "float32", "float16"),
                "--compile": ("slow", None, "")},
    "attention": BACKBONE,
    "predict classification": {
        **SHARED,
        "--num-heads": ("output", "4", "2"),
        "--frame-step": ("output", "2", "3"),
        "--stride": ("output", "8", "4"),
        "--size": ("output", "73", "80"),
        "--threshold": ("output", "0.5", "0.0"),
        "--smooth": ("output", "3", "1"),
    },
    "predict segmentation": {
        **SHARED, **DENSE_REFUSED,
        "--frame-step": ("output", "1", "2"),
        "--stride": ("output", "4", "8"),
        "--threshold": ("refused", None, "0.3"),
    },
    "predict detection": {
        **SHARED, **DENSE_REFUSED,
        "--frame-step": ("output", "1", "2"),
        "--stride": ("output", "1", "3"),
        "--threshold": ("output", "0.5", "0.05"),
    },
    "predict phase": {
        "--online": ("output", None, ""),
        "--annotations": ("output", None, "ANNOTATIONS"),
        **{k: ("recorded", *v) for k, v in RUNTIME.items()},
    },
}
# the value of --annotations: a segments.csv beside the inputs that annotates v.mp4
ANNOTATIONS = "ANNOTATIONS"
PHASES = ("idle", "cut", "close")


def subparser(command: str):
    """The argparse parser of ``command`` ("extract", "predict detection", …)."""
    parser = build_parser()
    for word in command.split():
        action = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = action.choices[word]
    return parser


@pytest.mark.parametrize("command", sorted(TABLE))
def test_the_table_lists_every_option_of_the_command(command):
    options = {s for a in subparser(command)._actions for s in a.option_strings
               if s.startswith("--")}
    assert options - NOT_SETTINGS == set(TABLE[command])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A 16-frame 48x96 video at 30 fps and an 8-frame PNG folder (frame folders play at
    ``--fps``)."""
    root = tmp_path_factory.mktemp("option_inputs")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (16, 48, 96, 3), dtype=np.uint8)
    frames[:, 10:30, 20:50] = 250  # something for the models to see
    write_video(root / "v.mp4", frames, fps=30)
    (root / "frames").mkdir()
    for i in range(8):
        Image.fromarray(frames[i]).save(root / "frames" / f"{i:03d}.png")
    annotations(root).write_text("video,start_s,end_s,phase\nv,0,0.2,idle\nv,0.2,0.4,cut\n"
                                 "v,0.4,0.6,close\n")
    return root


def annotations(inputs: Path) -> Path:
    """The phase annotations of the inputs (``--annotations``), outside the inputs' folder."""
    return inputs.parent / f"{inputs.name}_segments.csv"


@pytest.fixture(scope="module")
def checkpoints(task_dirs, tmp_path_factory) -> dict[str, Path]:
    """Each command's checkpoint: the released-layout backbone for extract and attention, the
    released PolypDiag classifier, and tiny task directories (detection: no score floor, so
    there are boxes to threshold)."""
    from endofm.config import load_config, recipe_path
    from endofm.tasks import TASKS
    from endofm.tasks.base import task_config_schema

    cls = TASKS["detection"]
    torch.manual_seed(0)
    det = cls(load_config(task_config_schema(cls), recipe_path("detection", "tiny"),
                          ["model.score_thresh=0.0", "model.min_size=64",
                           "model.max_size=128"]))
    detector = det.save_model(det.build_model(None), tmp_path_factory.mktemp("det"))
    return {"extract": RELEASED, "attention": RELEASED, "predict classification": POLYPDIAG,
            "predict segmentation": task_dirs["segmentation"], "predict detection": detector,
            "predict phase": tiny_phase_model(tmp_path_factory.mktemp("phase"), PHASES)}


def base_args(command: str) -> list[str]:
    """The settings every run of ``command`` starts from (the table's first values)."""
    args = []
    for option, (_, value, _) in TABLE[command].items():
        if value is not None:
            args += [option, value]
    return args


def run(command: str, checkpoint: Path, inputs: Path, out: Path, args: list[str]) -> int:
    args = [str(annotations(inputs)) if a == ANNOTATIONS else a for a in args]
    return main([*command.split(), "--checkpoint", str(checkpoint), str(inputs), "--output",
                 str(out), "--quiet", *args])


def written(out: Path) -> dict[str, str]:
    """Digest of every file the run wrote, but the records and pages that echo settings."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != "run.json"
            and ".records" not in p.parts and p.suffix != ".html"}


def recorded(out: Path) -> dict:
    run_json = json.loads((out / "run.json").read_text())
    return {"settings": run_json["settings"], "runtime": run_json["runtime"]}


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with ``option`` set to ``value`` (a flag when ``value`` is "")."""
    if option in args:
        i = args.index(option)
        args = args[:i] + args[i + 2:]
    return [*args, option] if value == "" else [*args, option, value]


def is_slow(command: str, option: str) -> bool:
    """``--compile`` (an inductor build), and the runtime options past the first command that
    shows the shared runtime records them (``predict phase`` records its own)."""
    return TABLE[command][option][0] == "slow" or (
        option in RUNTIME and command not in ("extract", "predict phase"))


CASES = [(c, o) for c in sorted(TABLE) for o in TABLE[c] if not is_slow(c, o)]
SLOW = [(c, o) for c in sorted(TABLE) for o in TABLE[c] if is_slow(c, o)]


@pytest.fixture(scope="module")
def base_runs(checkpoints, inputs, tmp_path_factory) -> dict[str, Path]:
    """Each command run once with the table's first values (made on first use)."""
    runs: dict[str, Path] = {}

    def get(command: str) -> Path:
        if command not in runs:
            out = tmp_path_factory.mktemp("base") / command.replace(" ", "_")
            assert run(command, checkpoints[command], inputs, out, base_args(command)) == 0
            runs[command] = out
        return runs[command]

    return get


def check_option(command, option, checkpoints, inputs, base_runs, tmp_path, capsys) -> None:
    kind, _, value = TABLE[command][option]
    ckpt = checkpoints[command]
    base = base_runs(command)
    capsys.readouterr()
    changed = tmp_path / "changed"
    status = run(command, ckpt, inputs, changed, with_option(base_args(command), option, value))
    if kind == "refused":
        err = capsys.readouterr().err
        assert status == 1 and err.startswith(f"endofm: error: {option}") and \
            err.count("\n") == 1, err
        assert "means nothing for" in err and not changed.exists()
        return
    assert status == 0
    if kind == "output":
        assert written(changed) != written(base), f"{command} {option} changed no output"
    else:  # recorded (slow: --compile)
        assert recorded(changed) != recorded(base), f"{command} {option} was not recorded"


@pytest.mark.parametrize("command,option", CASES)
def test_every_option_is_honoured_or_refused(command, option, checkpoints, inputs, base_runs,
                                             tmp_path, capsys):
    check_option(command, option, checkpoints, inputs, base_runs, tmp_path, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("command,option", SLOW)
def test_every_slow_option_is_honoured(command, option, checkpoints, inputs, base_runs, tmp_path,
                                       capsys):
    check_option(command, option, checkpoints, inputs, base_runs, tmp_path, capsys)
