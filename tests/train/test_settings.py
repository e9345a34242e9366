"""The ``train`` keys every training command shares, and the lr batch-scaling rule."""

import dataclasses

import pytest

from endofm.ssl import PretrainConfig
from endofm.tasks import TASKS
from endofm.train.settings import TrainSettings, scaled_lr

SHARED = ["seed", "device", "precision", "progress", "epochs", "batch_size", "num_workers",
          "log_every"]


def test_the_shared_keys_are_the_train_section_of_every_training_command():
    assert [f.name for f in dataclasses.fields(TrainSettings)] == SHARED
    sections = [PretrainConfig().train] + [task.config_class().train for task in TASKS.values()]
    for section in sections:
        assert isinstance(section, TrainSettings)
        assert SHARED == [f.name for f in dataclasses.fields(section)][:len(SHARED)]


def test_each_command_keeps_its_defaults():
    pretrain = PretrainConfig().train
    assert (pretrain.epochs, pretrain.batch_size, pretrain.num_workers, pretrain.precision) == (
        30, 3, 4, "fp16")  # the release's recipe (30 epochs: the maintainers' advice)
    finetune = TASKS["classification"].config_class().train
    assert (finetune.epochs, finetune.batch_size, finetune.num_workers, finetune.precision) == (
        20, 4, 0, "fp32")
    assert PretrainConfig().optim.scale_lr_with_batch
    assert TASKS["classification"].config_class().optim.scale_lr_with_batch


@pytest.mark.parametrize("key,value", [("epochs", 0), ("batch_size", 0), ("log_every", 0),
                                       ("num_workers", -1)])
def test_shared_ranges_are_checked_for_every_command(key, value):
    for make in (PretrainConfig, *(task.config_class for task in TASKS.values())):
        with pytest.raises(ValueError, match=rf"^train.{key} must be >= "):
            dataclasses.replace(make().train, **{key: value})


def test_lr_scaling_rule():
    assert scaled_lr(5e-4, 256, True) == pytest.approx(5e-4)
    assert scaled_lr(5e-4, 24, True) == pytest.approx(5e-4 * 24 / 256)
    assert scaled_lr(5e-4, 24, False) == 5e-4
