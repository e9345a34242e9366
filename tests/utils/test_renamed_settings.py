"""Settings renamed for one vocabulary: an old key in a file or override is one line naming the
new key; what endofm recorded itself under an old name still reads."""

import dataclasses

import pytest

from endofm.config import (
    RENAMED_KEYS,
    ConfigError,
    from_dict,
    load_config,
    recipe_names,
    recipe_path,
    renamed_to_current,
)
from endofm.eval.probe import ProbeConfig
from endofm.ssl import PretrainConfig
from endofm.tasks import TASKS
from endofm.tasks.detection.task import DetectionDataConfig
from endofm.tasks.segmentation.task import saved_normalization
from endofm.train.run_record import RunMismatchError, read_record, save_record, start_run

SCHEMAS = {"pretrain": PretrainConfig, "probe": ProbeConfig,
           **{name: task.config_class for name, task in TASKS.items()}}
# the command whose settings each old key belonged to, and a value of the right type
OLD_KEYS = [
    *[("pretrain", key, value) for key, value in [
        ("run.seed", 3), ("run.device", "cpu"), ("run.precision", "bf16"),
        ("run.progress", False), ("run.log_every", 2), ("run.save_every_steps", 5),
        ("run.save_every_epochs", 2), ("run.keep_last", 1), ("optim.epochs", 4),
        ("optim.batch_size", 2), ("data.num_workers", 1), ("views.sampling_rate", 8),
        ("monitor.sampling_rate", 8)]],
    ("classification", "data.sampling_rate", 8),
    ("probe", "data.sampling_rate", 8),
    ("detection", "data.frame_stride", 2),
    ("segmentation", "data.normalise", "release"),
]


def test_every_renamed_key_is_covered():
    assert {key for _, key, _ in OLD_KEYS} == set(RENAMED_KEYS)


@pytest.mark.parametrize("group,old,value", OLD_KEYS)
def test_an_old_key_is_one_line_naming_the_new_one(group, old, value):
    new = RENAMED_KEYS[old]
    with pytest.raises(ConfigError) as err:
        load_config(SCHEMAS[group], None, [f"{old}={value}"])
    assert str(err.value) == (f"invalid setting in command-line override '{old}={value}': "
                              f"{old} was renamed {new}")
    section, key = new.split(".")
    cfg = load_config(SCHEMAS[group], None, [f"{new}={value}"])
    assert getattr(getattr(cfg, section), key) == value


def test_a_saved_recipe_with_old_keys_names_the_file_and_the_new_key(tmp_path):
    saved = tmp_path / "mine.yaml"
    saved.write_text("defaults: pretrain/tiny\noptim:\n  lr: 0.1\nrun:\n  seed: 4\n")
    with pytest.raises(ConfigError, match=rf"^invalid setting in config {saved}: run.seed was "
                                          r"renamed train.seed$"):
        load_config(PretrainConfig, saved)


def test_a_schema_that_has_the_old_key_keeps_it():
    @dataclasses.dataclass
    class Optim:
        epochs: int = 1

    @dataclasses.dataclass
    class Schema:
        optim: Optim = dataclasses.field(default_factory=Optim)

    assert load_config(Schema, None, ["optim.epochs=5"]).optim.epochs == 5
    assert load_config(Schema, base={"optim": {"epochs": 6}}).optim.epochs == 6


def test_recorded_settings_move_to_the_new_names():
    old = {"run": {"seed": 2, "device": "cpu"}, "optim": {"epochs": 3, "lr": 0.1},
           "data": {"num_workers": 2}, "views": {"sampling_rate": 8}}
    assert renamed_to_current(old) == {
        "train": {"seed": 2, "device": "cpu", "epochs": 3, "num_workers": 2},
        "optim": {"lr": 0.1}, "views": {"frame_step": 8}}
    # a new key already recorded wins over the old one
    both = {"train": {"epochs": 5}, "optim": {"epochs": 3}}
    assert renamed_to_current(both) == {"train": {"epochs": 5}}
    assert old["run"] == {"seed": 2, "device": "cpu"}  # the input is left as it was


def test_a_run_recorded_under_the_old_names_resumes(tmp_path):
    """A pre-training folder whose config.yaml predates the rename is the same run."""
    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"))
    record = start_run(cfg, tmp_path, {"data": "d"})
    old = read_record(record)
    run = old.pop("train")
    old["optim"] |= {"epochs": run.pop("epochs"), "batch_size": run.pop("batch_size")}
    old["data"]["num_workers"] = run.pop("num_workers")
    old["run"] = run
    old["views"]["sampling_rate"] = old["views"].pop("frame_step")
    save_record(old, tmp_path)
    assert "\nrun:\n" in record.read_text()
    start_run(cfg, tmp_path, {"data": "d"})  # no RunMismatchError
    assert "\nrun:\n" not in record.read_text()
    changed = load_config(PretrainConfig, recipe_path("pretrain", "tiny"), ["train.seed=9"])
    with pytest.raises(RunMismatchError, match="train.seed: 0 → 9"):
        start_run(changed, tmp_path, {"data": "d"})


def test_saved_model_settings_under_the_old_names_load():
    assert from_dict(DetectionDataConfig, {"num_frames": 3, "frame_stride": 2}).frame_step == 2
    assert saved_normalization({"normalise": "release"}) == "release"
    assert saved_normalization({"normalization": "release", "normalise": "imagenet"}) == "release"
    assert saved_normalization({}) == "imagenet"


@pytest.mark.parametrize("group", ["pretrain", *TASKS])
def test_no_packaged_recipe_uses_an_old_key(group):
    for name in recipe_names(group):
        text = recipe_path(group, name).read_text()
        assert "sampling_rate" not in text and "\nrun:" not in text, name
        load_config(SCHEMAS[group], recipe_path(group, name))
