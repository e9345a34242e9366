import io

import pytest

from endofm.utils.progress import note, progress, set_quiet


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def loud(monkeypatch):
    monkeypatch.delenv("ENDOFM_QUIET", raising=False)
    set_quiet(False)
    yield
    set_quiet(False)


def test_plain_lines_every_interval_and_at_the_end(monkeypatch):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    bar = progress(range(3), desc="evaluate", unit="video", stream=out)
    assert list(bar) == [0, 1, 2]
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split(" [")[0] for line in lines] == [
        "evaluate: 1/3 video 33%", "evaluate: 2/3 video 67%", "evaluate: 3/3 video 100%",
        "evaluate: 3/3 video done"]


def test_long_interval_prints_only_the_final_line(monkeypatch):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "3600")
    out = io.StringIO()
    with progress(total=50, desc="synth", unit="file", stream=out) as bar:
        for _ in range(50):
            bar.update()
        bar.set_postfix(loss=0.5)
    assert out.getvalue().count("\n") == 1
    assert out.getvalue().startswith("synth: 50/50 file done") and "loss=0.5" in out.getvalue()


def test_terminal_gets_a_bar(monkeypatch):
    out = Terminal()
    list(progress(range(5), desc="epoch 1/2", stream=out))
    assert "\r" in out.getvalue() and "epoch 1/2" in out.getvalue()


@pytest.mark.parametrize("how", ["set_quiet", "env", "enabled"])
def test_one_switch_turns_it_off(monkeypatch, how):
    monkeypatch.setenv("ENDOFM_PROGRESS_SECONDS", "0")
    if how == "set_quiet":
        set_quiet(True)
    elif how == "env":
        monkeypatch.setenv("ENDOFM_QUIET", "1")
    out, tty = io.StringIO(), Terminal()
    for stream in (out, tty):
        assert list(progress(range(3), stream=stream, enabled=how != "enabled")) == [0, 1, 2]
    assert out.getvalue() == "" and tty.getvalue() == ""
    note("skipped a.mp4: empty file", stream=out)
    assert out.getvalue() == "skipped a.mp4: empty file\n"
