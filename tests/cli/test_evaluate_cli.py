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


def recorded_run(tmp_path, origin: dict, settings_of: str):
    """A run folder whose record has ``settings_of``'s tiny settings and says ``origin``."""
    folder = tmp_path / "run"
    settings = to_dict(load_config(task_config_schema(TASKS[settings_of]),
                                   recipe_path(settings_of, "tiny")))
    save_settings(settings | {"origin": origin}, folder / "config.yaml")
    (folder / "last.pth").write_bytes(b"")
    return folder / "last.pth"


@pytest.mark.parametrize(("origin", "message"), [
    # the record's origin decides, even where its sections would fit the task asked for
    ({"command": "finetune", "task": "segmentation"},
     "this is a segmentation run, not a classification run; evaluate it with `endofm evaluate "
     "segmentation`"),
    ({"command": "pretrain"}, "this is a pre-training run, not a fine-tuned classification"),
    ({"command": "finetune", "task": "phases"},
     "a run of `endofm finetune phases`, which is no registered task's fine-tuning "
     "(registered tasks: classification, "),
])
def test_the_run_is_recognised_by_the_origin_it_records(tmp_path, capsys, origin, message):
    checkpoint = recorded_run(tmp_path, origin, "classification")
    assert main(["evaluate", "classification", "--checkpoint", str(checkpoint), "--data",
                 str(tmp_path), "--output", str(tmp_path / "ev")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"endofm: error: {checkpoint.parent / 'config.yaml'}: {message}"), err


def test_another_tasks_model_folder_without_a_record_is_named(tmp_path, capsys):
    from pathlib import Path

    from endofm.tasks.classification.model import load_classifier

    assets = Path(__file__).parents[1] / "assets" / "endofm_reference_tiny"
    model = load_classifier(assets / "polypdiag_tiny.pth", num_heads=4).save_pretrained(
        tmp_path / "clf")
    assert main(["evaluate", "segmentation", "--checkpoint", str(model), "--data",
                 str(tmp_path), "--output", str(tmp_path / "ev")]) == 1
    assert capsys.readouterr().err.startswith(
        f"endofm: error: {model}: this is a classification model, not a segmentation model; "
        "evaluate it with `endofm evaluate classification`")
