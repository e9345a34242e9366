import json
import os

import pytest
import torch

from endofm.utils.io import atomic_torch_save, atomic_write, atomic_write_json


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
