"""``endofm --help`` must not pay for torch: the parser is built from light modules only."""

import subprocess
import sys

import pytest

from endofm.cli import data as data_cli
from endofm.cli import probe as probe_cli
from endofm.data.inspect import FORMATS
from endofm.data.synth import SCALES
from endofm.data.synth_render import STYLES
from endofm.eval import probe

PROBE = """
import sys
from endofm.cli.main import build_parser
parser = build_parser()
for argv in (["finetune", "classification", "--help"], ["data", "synth", "--help"]):
    try:
        parser.parse_args(argv)
    except SystemExit:
        pass
heavy = sorted(m for m in ("torch", "timm", "torchvision", "av", "numpy", "matplotlib")
               if m in sys.modules)
print("heavy:", heavy)
"""


def test_parser_imports_no_heavy_module():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy: []"


def test_spelled_out_choices_match_the_library():
    assert data_cli.FORMATS == FORMATS
    assert data_cli.SCALES == tuple(sorted(SCALES))
    assert data_cli.STYLES == tuple(sorted(STYLES))
    assert probe_cli.FORMATS == probe.FORMATS
    assert probe_cli.METHODS == probe.METHODS


def test_common_options_before_or_after_the_command():
    from endofm.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["--quiet", "info", "x.pth"]).quiet is True
    args = parser.parse_args(["info", "x.pth", "--quiet", "--debug"])
    assert (args.quiet, args.debug) == (True, True)
    assert parser.parse_args(["info", "x.pth"]).quiet is False


def test_only_extract_offers_compile(capsys):
    """``--compile`` is offered only where the command compiles its model (it did nothing in
    ``predict`` and ``attention``)."""
    from endofm.cli.main import build_parser

    parser = build_parser()
    assert parser.parse_args(["extract", "--checkpoint", "c", "v.mp4", "--output", "o",
                              "--compile"]).compile is True
    for argv in (["predict", "classification", "--checkpoint", "c", "v.mp4", "--output", "o"],
                 ["attention", "--checkpoint", "c", "v.mp4", "--output", "o"]):
        assert not hasattr(parser.parse_args(argv), "compile")
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--compile"])
        assert "unrecognized arguments: --compile" in capsys.readouterr().err


def test_overrides_may_follow_the_options(capsys):
    """``key=value`` overrides after the options join those before them, in order; other
    leftovers, and overrides given to a command that takes none, stay usage errors."""
    from endofm.cli.main import build_parser, parse_args

    parser = build_parser()
    args = parse_args(parser, ["pretrain", "--config", "tiny", "--data", "d", "train.epochs=1",
                               "--output", "o", "head.num_layers=1", "train.epochs=2"])
    assert args.overrides == ["train.epochs=1", "head.num_layers=1", "train.epochs=2"]
    assert (str(args.data), str(args.output)) == ("d", "o")
    args = parse_args(parser, ["finetune", "classification", "--data", "d", "--output", "o",
                               "train.epochs=1"])
    assert args.overrides == ["train.epochs=1"]
    for argv in (["pretrain", "--config", "tiny", "--data", "d", "--output", "o", "--bogus"],
                 ["extract", "--checkpoint", "c", "v.mp4", "--output", "o", "a=1"]):
        with pytest.raises(SystemExit) as exit_:
            parse_args(parser, argv)
        assert exit_.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


EXTRACT = """
import sys
import endofm.inference
from endofm.inference.extract import extract
from endofm.inference.encoder import VideoEncoder
print("task code:", sorted(m for m in ("sklearn", "endofm.tasks", "endofm.inference.predict")
                           if m in sys.modules))
print("names:", all(getattr(endofm.inference, n) is not None for n in dir(endofm.inference)))
"""


def test_extract_does_not_import_the_task_code():
    """``endofm extract`` starts without the task heads, metrics and scikit-learn; the lazy
    ``endofm.inference`` still resolves every name it lists."""
    result = subprocess.run([sys.executable, "-c", EXTRACT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-2:] == ["task code: []", "names: True"]
