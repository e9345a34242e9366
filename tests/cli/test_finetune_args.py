"""Every task's ``finetune`` command checks its arguments the same way (one helper)."""

from __future__ import annotations

from endofm.cli.main import main
from endofm.tasks import task_names


def test_finetune_refuses_fewer_than_one_seed_for_every_task(tmp_path, capsys):
    for task in task_names():
        assert main(["finetune", task, "--data", str(tmp_path), "--output",
                     str(tmp_path / task), "--seeds", "0"]) == 1
        assert "--seeds must be at least 1, got 0" in capsys.readouterr().err


def test_finetune_refuses_a_missing_pretrained_file_for_every_task(tmp_path, capsys):
    for task in task_names():
        assert main(["finetune", task, "--data", str(tmp_path), "--output",
                     str(tmp_path / task), "--pretrained", str(tmp_path / "none.pth")]) == 1
        assert f"pretrained checkpoint not found: {tmp_path / 'none.pth'}" in \
            capsys.readouterr().err
