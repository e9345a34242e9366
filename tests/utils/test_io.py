import errno
import json
import os

import pytest
import torch

from endofm.utils.io import (
    atomic_torch_save,
    atomic_write,
    atomic_write_json,
    atomic_write_stream,
)


def test_atomic_torch_save_round_trip(tmp_path):
    path = atomic_torch_save({"w": torch.arange(3)}, tmp_path / "sub" / "ckpt.pth")
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pth"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = atomic_write_json({"a": 1}, tmp_path / "m.json")

    def broken(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["m.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_the_umask_permissions_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        json_path = atomic_write_json({"a": 1}, tmp_path / "m.json")
        ckpt = atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "c.pth")
    finally:
        os.umask(old)
    for path in (json_path, ckpt):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_torch_save({"w": torch.zeros(1)}, tmp_path / "c.pth")
    kinds = [kind for kind, _ in events]
    assert kinds[:2] == ["fsync", "replace"] and events[0][1] == events[1][1]
    assert events[0][1].endswith(".tmp")


def test_full_disk_names_the_target_file(tmp_path):
    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as err:
        atomic_write_stream(tmp_path / "ckpt.pth", full)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "ckpt.pth")
    assert os.listdir(tmp_path) == []
