"""Bad input through the real ``endofm`` command in a subprocess: every row must end with exit
status 1 (130 for Ctrl-C), one ``endofm: error:`` line naming the problem, and no traceback.

The rows run concurrently (each subprocess pays torch's import once), then are checked one by
one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

import endofm
from endofm.config import RECIPES
from endofm.data.synth import synthesize

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "endofm_reference_tiny"
TINY_CKPT = ASSETS / "endo_fm_tiny.pth"
CONFIGS = RECIPES
CLASSIFICATION_TINY = CONFIGS / "classification" / "tiny.yaml"
SRC = Path(endofm.__file__).resolve().parents[1]


class Pickled:
    """A class a weights-only unpickler must refuse."""


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "endofm.cli.main", *args]


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ENDOFM_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env | extra


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True)
    return probe.returncode == 0


def full_disk_command(out: Path) -> list[str]:
    """``endofm convert`` into a 256 KiB tmpfs (the weights are 1.6 MB), then list the folder;
    without mount rights, ENOSPC is faked at the write call instead."""
    convert = cli("convert", str(TINY_CKPT), "--out", str(out / "conv"), "--num-heads", "4")
    if can_mount_tmpfs():
        script = ('mount -t tmpfs -o size=256k tmpfs "$0" || exit 99; "$@"; rc=$?; '
                  'ls -a "$0/conv"; exit $rc')
        return ["unshare", "-Urm", "sh", "-c", script, str(out), *convert]
    fake = ("import builtins, errno, os, sys\n"
            "real_open = builtins.open\n"
            "class Full:\n"
            "    def __init__(self, f): self.f = f\n"
            "    def write(self, b): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
            "    def __enter__(self): return self\n"
            "    def __exit__(self, *a): self.f.close()\n"
            "def fake_open(path, mode='r', *a, **k):\n"
            "    f = real_open(path, mode, *a, **k)\n"
            "    return Full(f) if 'w' in mode and str(path).endswith('.tmp') else f\n"
            "builtins.open = fake_open\n"
            "from endofm.cli.main import main\n"
            "rc = main(sys.argv[1:])\n"
            f"print(*os.listdir({str(out / 'conv')!r}))\n"
            "sys.exit(rc)\n")
    return [sys.executable, "-c", fake, *convert[3:]]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    """Run every bad-input row at once; ``{name: finished process}``."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    data = synthesize(tmp / "data", seed=0, scale="tiny")["polypdiag"]
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "text.pth").write_text("hello, I am not a checkpoint\n")
    (tmp / "empty.pth").write_bytes(b"")
    torch.save({"x": Pickled()}, tmp / "pickled.pth")
    (tmp / "bad.yaml").write_text("model:\n  name: x\n   img_size: [1, 2\n")
    other_run = tmp / "other_run"
    other_run.mkdir()
    torch.save({"model": {"some.weight": torch.zeros(3)}}, other_run / "last.pth")
    finetune = ("finetune", "classification", "--config", str(CLASSIFICATION_TINY),
                "--data", str(data))
    commands = {
        "output is a file": cli("convert", str(TINY_CKPT), "--out", str(tmp / "a_file"),
                                "--num-heads", "4"),
        "text file as checkpoint": cli("info", str(tmp / "text.pth")),
        "empty checkpoint": cli("info", str(tmp / "empty.pth")),
        "pickled class": cli("info", str(tmp / "pickled.pth")),
        "invalid yaml": cli(*finetune[:2], "--config", str(tmp / "bad.yaml"), "--data",
                            str(data), "--output", str(tmp / "o1")),
        "override without =": cli(*finetune, "--output", str(tmp / "o2"), "optim.lr"),
        "bad override value": cli(*finetune, "--output", str(tmp / "o3"), "optim.lr=fast"),
        "architecture mismatch": cli(*finetune, "--output", str(tmp / "o4"), "--pretrained",
                                     str(TINY_CKPT), "model.backbone.embed_dim=192"),
        "run folder of another model": cli(*finetune, "--output", str(other_run)),
        "head count unknown": cli("convert", str(TINY_CKPT), "--out", str(tmp / "o5")),
        "full disk": full_disk_command(tmp / "small_disk"),
    }
    (tmp / "small_disk").mkdir()
    readonly, commands["read-only output folder"] = _read_only_row(tmp)
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, env=cli_env())
             for name, cmd in commands.items()}
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        done[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    shutil.rmtree(readonly, ignore_errors=True)
    return done


def _read_only_row(tmp: Path) -> tuple[Path, list[str]]:
    """``endofm data synth`` into a folder it may not write. Where permissions bind (not root),
    the folder's mode refuses it; root and a process with CAP_DAC_OVERRIDE ignore modes, so
    there ``os.mkdir`` under the folder is made to fail as the kernel would for anyone else
    (``EACCES`` naming the path). Either way the command runs from this checkout, wherever it
    sits."""
    base = Path(tempfile.mkdtemp(prefix="endofm_ro_"))
    target = base / "locked"
    target.mkdir(mode=0o555)
    target.chmod(0o555)
    cmd = cli("data", "synth", "--scale", "tiny", "--out", str(target / "sub"))
    if not _modes_bind(target):
        cmd = [sys.executable, "-c", DENY_MKDIR, str(target), *cmd[3:]]
    return base, cmd


def _modes_bind(folder: Path) -> bool:
    """Whether this process is refused a write into ``folder`` (mode 0555)."""
    probe = folder / "probe"
    try:
        probe.mkdir()
    except PermissionError:
        return True
    probe.rmdir()
    return False


# ``python -c DENY_MKDIR FOLDER endofm-args...``: the CLI, with every mkdir under FOLDER
# refused the way the kernel refuses it to a user without write permission
DENY_MKDIR = """\
import errno, os, sys
locked, real_mkdir = sys.argv.pop(1), os.mkdir
def mkdir(path, *args, **kwargs):
    if os.path.dirname(os.path.abspath(path)) == locked:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
    return real_mkdir(path, *args, **kwargs)
os.mkdir = mkdir
from endofm.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


EXPECTED = {
    # row: (exit status, substrings of the one error line)
    "output is a file": (1, ["a_file", "already exists"]),
    "text file as checkpoint": (1, ["text.pth", "not a PyTorch checkpoint"]),
    "empty checkpoint": (1, ["empty.pth", "empty (0 bytes)"]),
    "pickled class": (1, ["pickled.pth", "Pickled", "refusing to run code"]),
    "invalid yaml": (1, ["invalid YAML in", "bad.yaml", "line 3"]),
    "override without =": (1, ["command-line override 'optim.lr'", "key=value"]),
    "bad override value": (1, ["command-line override 'optim.lr=fast'", "optim.lr"]),
    "architecture mismatch": (1, ["endo_fm_tiny.pth", "does not fit the model",
                                  "shape mismatch", "more"]),
    "run folder of another model": (1, ["last.pth", "holds a different model", "--restart"]),
    "head count unknown": (1, ["num_heads required", "width 96", "--num-heads"]),
    "full disk": (1, ["model.safetensors", "no space left on device"]),
    "read-only output folder": (1, ["locked", "permission denied"]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_gives_one_clear_line(rows: dict, name: str) -> None:
    if name not in rows:
        pytest.skip(f"{name}: cannot be set up on this machine")
    result = rows[name]
    status, needles = EXPECTED[name]
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines()
                   if line.startswith("endofm: error: ")]
    assert len(error_lines) == 1, result.stderr
    for needle in needles:
        assert needle in error_lines[0], (needle, result.stderr)
    assert result.returncode == status, result.stderr
    detail = result.stderr.split(error_lines[0], 1)[1].strip().splitlines()
    assert len(detail) <= 11, result.stderr  # at most ~10 lines of detail
    assert len(error_lines[0]) < 1500, error_lines[0]


def test_full_disk_leaves_no_temporary_file(rows: dict) -> None:
    listing = rows["full disk"].stdout.split()
    assert not [name for name in listing if name.endswith(".tmp")], listing


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "text.pth").write_text("not a checkpoint\n")
    result = subprocess.run(cli("info", str(tmp_path / "text.pth")), capture_output=True,
                            text=True, env=cli_env(ENDOFM_DEBUG="1"), timeout=600)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "endofm: error: " in result.stderr


def test_usage_error_exits_2() -> None:
    result = subprocess.run(cli("info"), capture_output=True, text=True, env=cli_env(),
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "usage: endofm info" in result.stderr


def test_ctrl_c_asks_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    # SIG_DFL survives exec: under a background job (nohup, `&`) SIGINT is inherited ignored,
    # and a Python started that way never raises KeyboardInterrupt
    proc = subprocess.Popen(cli("data", "synth", "--out", str(out), "--scale", "small"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not (out / "videos").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "synth never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted — re-run the same command to resume" in err
    assert "Traceback" not in err
