"""Configs are typed: dataclasses out of load_config, choices checked at load time, recipes
hold only their differences from the defaults, the run config records the git commit."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

from endofm.config import (
    ConfigError,
    from_dict,
    load_config,
    recipe_groups,
    recipe_names,
    recipe_path,
    save_run_config,
    to_dict,
)
from endofm.eval.probe import ProbeConfig
from endofm.ssl import PretrainConfig
from endofm.ssl.config import SSLOptimConfig
from endofm.tasks import TASKS
from endofm.tasks.base import OptimConfig, task_config_schema
from endofm.train.optim import ClipMode, OptimizerName


def schema(group):
    return {"pretrain": PretrainConfig, "probe": ProbeConfig}.get(group) or task_config_schema(
        TASKS[group])


def test_load_config_returns_the_dataclass_with_enum_choices():
    cfg = load_config(task_config_schema(TASKS["classification"]), None, ["optim.name=adamw"])
    assert type(cfg).__name__ == "ClassificationConfig" and dataclasses.is_dataclass(cfg)
    assert isinstance(cfg.optim, OptimConfig) and cfg.optim.name is OptimizerName.adamw
    assert to_dict(cfg)["optim"]["name"] == "adamw"
    assert load_config(PretrainConfig, None, ["optim.clip_mode=per_param"]).optim.clip_mode \
        is ClipMode.per_param


@pytest.mark.parametrize("group,override,key", [
    ("classification", "optim.name=adam", "name"),
    ("pretrain", "optim.clip_mode=norm", "clip_mode"),
    ("pretrain", "run.precision=fp8", "precision"),
    ("pretrain", "data.on_error=ignore", "on_error"),
    ("pretrain", "loss.combine=mean", "combine"),
    ("segmentation", "model.variant=unet", "variant"),
    ("segmentation", "data.protocol=random", "protocol"),
    ("detection", "model.head=yolo", "head"),
    ("classification", "protocol.selection=best", "selection"),
])
def test_bad_choices_fail_at_load_time(group, override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(schema(group), None, [override])


@pytest.mark.parametrize("override", ["run.save_every_epochs=0", "run.keep_last=0",
                                      "run.log_every=0", "run.save_every_steps=-1",
                                      "monitor.every_epochs=0", "monitor.k=0",
                                      "monitor.num_frames=0", "monitor.sampling_rate=0"])
def test_run_and_monitor_intervals_out_of_range_fail_at_load_time(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} must be >= \d, got -?\d"):
        load_config(schema("pretrain"), None, [override])


@pytest.mark.parametrize("group", ["classification", "segmentation", "detection"])
@pytest.mark.parametrize("override", ["train.accum_steps=0", "train.log_every=0",
                                      "train.eval_every=0", "train.batch_size=0",
                                      "train.patience=-1", "train.min_samples=-1",
                                      "train.num_workers=-1"])
def test_task_intervals_out_of_range_fail_at_load_time(group, override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} must be >= \d, got -?\d"):
        load_config(schema(group), None, [override])


def test_from_dict_round_trips_and_checks():
    cfg = from_dict(SSLOptimConfig, {"clip_mode": "per_param", "lr": 1e-3})
    assert cfg.clip_mode is ClipMode.per_param and cfg.lr == 1e-3
    assert from_dict(SSLOptimConfig, to_dict(cfg)) == cfg
    with pytest.raises(ConfigError, match="clip_mode"):
        from_dict(SSLOptimConfig, {"clip_mode": "sometimes"})


def leaves(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# Recipes that spell out every value on purpose: endofm_lv traces each setting to a file and
# line of the successor's code (issue 14), defaults included.
TRACED = {("pretrain", "endofm_lv")}


@pytest.mark.parametrize("group,name", [(g, n) for g in recipe_groups() for n in recipe_names(g)
                                        if (g, n) not in TRACED])
def test_recipes_hold_only_differences_from_the_defaults(group, name):
    written = yaml.safe_load(recipe_path(group, name).read_text())
    base = written.pop("defaults", None)  # a recipe may start from another one
    defaults = to_dict(load_config(schema(group), recipe_path(group, Path(base).stem))
                       if base else schema(group)())
    same = []
    for key, value in leaves(written):
        default = defaults
        for part in key.split("."):
            default = default[part]
        if value == default:
            same.append(key)
    assert not same, f"{group}/{name} repeats defaults: {same}"


def test_run_config_records_the_git_commit_and_stays_loadable(tmp_path):
    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"))
    path = save_run_config(cfg, tmp_path)
    last = path.read_text().splitlines()[-1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                          capture_output=True, text=True).stdout.strip()
    assert last == f"# git commit: {head or 'unknown'}"
    assert load_config(PretrainConfig, path) == cfg


@pytest.mark.parametrize(("group", "size_key", "frames_key"), [
    ("pretrain", "views.global_size", "views.num_frames"),
    ("classification", "data.crop_size", "data.num_frames"),
    ("segmentation", "data.img_size", "data.num_frames"),
    ("detection", "model.min_size", "data.num_frames"),
    ("probe", "data.crop_size", "data.num_frames"),
])
def test_backbone_size_and_frames_follow_the_data_or_disagree_loudly(group, size_key,
                                                                      frames_key):
    """One ``model.backbone`` section everywhere; its size and frame count are the data's."""
    cfg = load_config(schema(group), recipe_path(group, "tiny"), [f"{size_key}=96",
                                                                  f"{frames_key}=6"])
    assert (cfg.model.backbone.img_size, cfg.model.backbone.num_frames) == (96, 6)
    same = load_config(schema(group), recipe_path(group, "tiny"),
                       [f"{size_key}=96", "model.backbone.img_size=96"])
    assert same.model.backbone.img_size == 96
    with pytest.raises(ConfigError, match=f"model.backbone.img_size=80 disagrees with "
                                          f"{size_key}=96"):
        load_config(schema(group), recipe_path(group, "tiny"),
                    [f"{size_key}=96", "model.backbone.img_size=80"])
    with pytest.raises(ConfigError, match=f"model.backbone.num_frames=5 disagrees with "
                                          f"{frames_key}=6"):
        load_config(schema(group), recipe_path(group, "tiny"),
                    [f"{frames_key}=6", "model.backbone.num_frames=5"])


def test_backbone_section_reaches_the_model_and_pretrained_is_one_setting(tmp_path):
    """``model.backbone`` settings reach ``create_backbone``; ``--pretrained`` and
    ``model.backbone.pretrained`` are the same setting for the engine."""
    from endofm.models import create_backbone, save_pretrained
    from endofm.tasks.engine import configured_pretrained

    cfg = load_config(schema("classification"), recipe_path("classification", "tiny"),
                      ["model.backbone.grad_checkpointing=true", "model.backbone.depth=1"])
    model = create_backbone(cfg.model.backbone)
    assert model.grad_checkpointing and len(model.blocks) == 1 and model.img_size == 64
    saved = save_pretrained(model, tmp_path / "bb")
    with_weights = load_config(schema("classification"), recipe_path("classification", "tiny"),
                               [f"model.backbone.pretrained={saved}"])
    task = TASKS["classification"](with_weights)
    assert configured_pretrained(with_weights) == str(saved)
    assert task.backbone_settings(None).pretrained == str(saved)
    assert task.backbone_settings(tmp_path / "other").pretrained == str(tmp_path / "other")
    assert configured_pretrained(object()) is None  # a task config without a backbone
