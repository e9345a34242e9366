import io
import logging

import pytest

from endofm.utils.progress import progress, set_quiet


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def loud(monkeypatch):
    monkeypatch.delenv("ENDOFM_QUIET", raising=False)
    set_quiet(False)
    yield
    set_quiet(False)


def progress_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "endofm.utils.progress"]


@pytest.fixture
def caplog(caplog):
    caplog.set_level(logging.INFO, logger="endofm")
    return caplog


def test_plain_lines_every_interval_and_at_the_end(monkeypatch, caplog):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    bar = progress(range(3), desc="evaluate", unit="video", stream=out)
    assert list(bar) == [0, 1, 2]
    lines = progress_lines(caplog)
    assert out.getvalue() == "" and {r.levelno for r in caplog.records} == {logging.INFO}
    assert [line.split(" [")[0] for line in lines] == [
        "evaluate: 1/3 video 33%", "evaluate: 2/3 video 67%", "evaluate: 3/3 video 100%",
        "evaluate: 3/3 video done"]


def test_long_interval_logs_only_the_final_line(monkeypatch, caplog):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "3600")
    with progress(total=50, desc="synth", unit="file", stream=io.StringIO()) as bar:
        for _ in range(50):
            bar.update()
        bar.set_postfix(loss=0.5)
    [line] = progress_lines(caplog)
    assert line.startswith("synth: 50/50 file done") and line.endswith("/s] loss=0.5")


def test_a_failed_task_logs_no_final_line(monkeypatch, caplog):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "3600")
    with pytest.raises(RuntimeError), progress(total=5, stream=io.StringIO()) as bar:
        bar.update()
        raise RuntimeError("decoding failed")
    assert progress_lines(caplog) == []


def test_terminal_gets_a_bar_and_no_log_lines(monkeypatch, caplog):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    out = Terminal()
    list(progress(range(5), desc="epoch 1/2", stream=out))
    assert "\r" in out.getvalue() and "epoch 1/2" in out.getvalue()
    assert progress_lines(caplog) == []


@pytest.mark.parametrize("how", ["set_quiet", "env", "enabled"])
def test_one_switch_turns_it_off(monkeypatch, caplog, how):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    if how == "set_quiet":
        set_quiet(True)
    elif how == "env":
        monkeypatch.setenv("ENDOFM_QUIET", "1")
    out, tty = io.StringIO(), Terminal()
    for stream in (out, tty):
        assert list(progress(range(3), stream=stream, enabled=how != "enabled")) == [0, 1, 2]
    assert out.getvalue() == "" and tty.getvalue() == "" and progress_lines(caplog) == []
