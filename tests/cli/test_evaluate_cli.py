"""``endofm evaluate TASK`` given another command's run: one line saying what the run is."""

import pytest

from endofm.cli.main import main
from endofm.config import load_config, recipe_path, save_settings, to_dict
from endofm.ssl import PretrainConfig
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema


def run_folder(tmp_path, name: str, schema: type, recipe: tuple[str, str]):
    """A run folder with the record ``recipe`` would leave and a placeholder checkpoint (never
    read: the record is refused first)."""
    folder = tmp_path / name
    save_settings(to_dict(load_config(schema, recipe_path(*recipe))), folder / "config.yaml")
    (folder / "last.pth").write_bytes(b"")
    return folder / "last.pth"


@pytest.mark.parametrize(("made_by", "evaluated_as", "message"), [
    ("pretrain", "classification",
     "this is a pre-training run, not a fine-tuned classification model; `endofm probe`"),
    ("classification", "segmentation",
     "this is a classification run, not a segmentation run; evaluate it with `endofm "
     "evaluate classification`"),
    ("segmentation", "detection",
     "this is a segmentation run, not a detection run; evaluate it with `endofm evaluate "
     "segmentation`"),
])
def test_another_commands_run_is_named_not_its_first_unknown_setting(
        tmp_path, capsys, made_by, evaluated_as, message):
    schema = PretrainConfig if made_by == "pretrain" else task_config_schema(TASKS[made_by])
    checkpoint = run_folder(tmp_path, made_by, schema, (made_by, "tiny"))
    assert main(["evaluate", evaluated_as, "--checkpoint", str(checkpoint), "--data",
                 str(tmp_path), "--output", str(tmp_path / "ev")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"endofm: error: {checkpoint.parent / 'config.yaml'}: {message}"), err
    assert "not in" not in err and not (tmp_path / "ev").exists()
