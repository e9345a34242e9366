"""The command line shows the library's log messages on stderr: INFO plain, warnings as
``warning: ...``, nothing but warnings with ``--quiet`` / ``ENDOFM_QUIET=1``, DEBUG with the
logger's name with ``--debug``."""

import logging
from pathlib import Path

import pytest

from endofm.cli.console import ConsoleFormatter
from endofm.cli.main import main


def record(level: int, message: str, name: str = "endofm.tasks.engine") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_formats_info_plain_and_other_levels_with_their_name() -> None:
    plain, debug = ConsoleFormatter(), ConsoleFormatter(debug=True)
    assert plain.format(record(logging.INFO, "epoch 1/2: loss 0.5")) == "epoch 1/2: loss 0.5"
    assert plain.format(record(logging.WARNING, "skipped a.mp4")) == "warning: skipped a.mp4"
    assert plain.format(record(logging.ERROR, "bad")) == "error: bad"
    assert (debug.format(record(logging.INFO, "epoch 1/2")) ==
            "info endofm.tasks.engine: epoch 1/2")
    assert debug.format(record(logging.DEBUG, "lr 0.1")) == "debug endofm.tasks.engine: lr 0.1"


@pytest.fixture
def talking_synth(monkeypatch):
    """``endofm data synth`` whose library call logs one message per level (and writes
    nothing)."""
    import endofm.data.synth

    def synthesize(out, **kwargs):
        log = logging.getLogger("endofm.data.synth")
        log.debug("rendering with %s", sorted(kwargs))
        log.info("rendered 3 videos")
        log.warning("1 video skipped")
        return {}

    monkeypatch.delenv("ENDOFM_QUIET", raising=False)
    monkeypatch.delenv("ENDOFM_DEBUG", raising=False)
    monkeypatch.setattr(endofm.data.synth, "synthesize", synthesize)


@pytest.mark.parametrize(("options", "env", "expected"), [
    ([], None, "rendered 3 videos\nwarning: 1 video skipped\n"),
    (["--quiet"], None, "warning: 1 video skipped\n"),
    ([], "ENDOFM_QUIET", "warning: 1 video skipped\n"),
    (["--debug"], None, "debug endofm.data.synth: rendering with ['scale', 'seed', 'style']\n"
                        "info endofm.data.synth: rendered 3 videos\n"
                        "warning endofm.data.synth: 1 video skipped\n"),
    ([], "ENDOFM_DEBUG", "debug endofm.data.synth: rendering with ['scale', 'seed', 'style']\n"
                        "info endofm.data.synth: rendered 3 videos\n"
                        "warning endofm.data.synth: 1 video skipped\n"),
], ids=["default", "--quiet", "ENDOFM_QUIET=1", "--debug", "ENDOFM_DEBUG=1"])
def test_levels_follow_quiet_and_debug(tmp_path, capsys, monkeypatch, talking_synth, options,
                                       env, expected) -> None:
    if env:
        monkeypatch.setenv(env, "1")
    assert main(["data", "synth", "--out", str(tmp_path), *options]) == 0
    assert capsys.readouterr().err == expected


def test_a_second_command_replaces_the_handler(tmp_path, capsys, talking_synth) -> None:
    """Commands run in one process (tests, a notebook) show each message once."""
    for _ in range(2):
        assert main(["data", "synth", "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().err == "warning: 1 video skipped\n" * 2


def test_a_real_command_shows_its_progress_lines_unless_quiet(tmp_path: Path, capsys,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "3600")
    monkeypatch.delenv("ENDOFM_QUIET", raising=False)
    assert main(["data", "synth", "--out", str(tmp_path / "a"), "--scale", "tiny"]) == 0
    printed = capsys.readouterr()
    assert printed.err.startswith("synth: 4/4 part done [") and printed.err.count("\n") == 1
    assert f"polypdiag  {tmp_path / 'a' / 'polypdiag'}" in printed.out  # results stay on stdout
    assert main(["data", "synth", "--out", str(tmp_path / "b"), "--scale", "tiny",
                 "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_python_warnings_read_as_one_warning_line_while_a_command_runs(
        tmp_path, monkeypatch) -> None:
    """(The default format adds the file, line and source line of the ``warnings.warn`` call.)"""
    import warnings

    import endofm.data.synth

    shown = []

    def synthesize(out, **kwargs):  # what Python would print for a warning raised here
        shown.append(warnings.formatwarning("the split is leaky", UserWarning, "cvc.py", 66))
        return {}

    monkeypatch.delenv("ENDOFM_DEBUG", raising=False)
    monkeypatch.setattr(endofm.data.synth, "synthesize", synthesize)
    before = warnings.formatwarning
    assert main(["data", "synth", "--out", str(tmp_path), "--quiet"]) == 0
    assert main(["data", "synth", "--out", str(tmp_path), "--debug"]) == 0
    assert shown == ["warning: the split is leaky\n",
                     "warning: UserWarning at cvc.py:66: the split is leaky\n"]
    assert warnings.formatwarning is before  # only while a command runs
