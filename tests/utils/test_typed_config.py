"""Configs are typed: dataclasses out of load_config, choices checked at load time, recipes
hold only their differences from the defaults, the run config records the git commit."""

import dataclasses
import subprocess
from pathlib import Path

import pytest
import yaml

import endofm.config
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
    ("pretrain", "train.precision=fp8", "precision"),
    ("pretrain", "data.on_error=ignore", "on_error"),
    ("pretrain", "loss.combine=mean", "combine"),
    ("segmentation", "model.variant=unet", "variant"),
    ("segmentation", "data.protocol=random", "protocol"),
    ("detection", "model.head=yolo", "head"),
    ("classification", "protocol.selection=best", "selection"),
    ("pretrain", "views.interpolation=cubic", "interpolation"),
    ("segmentation", "data.window=clip", "window"),
    ("segmentation", "data.normalization=kinetics", "normalization"),
    ("segmentation", "loss.dice_denominator=cubes", "dice_denominator"),
])
def test_bad_choices_fail_at_load_time(group, override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(schema(group), None, [override])


@pytest.mark.parametrize("override", ["train.save_every_epochs=0", "train.keep_last=0",
                                      "train.log_every=0", "train.save_every_steps=-1",
                                      "monitor.every_epochs=0", "monitor.k=0",
                                      "monitor.num_frames=0", "monitor.frame_step=0"])
def test_run_and_monitor_intervals_out_of_range_fail_at_load_time(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} must be >= \d, got -?\d"):
        load_config(schema("pretrain"), None, [override])


@pytest.mark.parametrize("group", ["classification", "segmentation", "detection"])
@pytest.mark.parametrize("override", ["train.epochs=0", "train.accum_steps=0", "train.log_every=0",
                                      "train.eval_every=0", "train.batch_size=0",
                                      "train.patience=-1", "train.min_samples=-1",
                                      "train.num_workers=-1"])
def test_task_intervals_out_of_range_fail_at_load_time(group, override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=rf"{key} must be >= \d, got -?\d"):
        load_config(schema(group), None, [override])


@pytest.mark.parametrize("group,override,expected", [
    ("pretrain", "train.batch_size=0", "train.batch_size must be >= 1, got 0"),
    ("pretrain", "train.epochs=0", "train.epochs must be >= 1, got 0"),
    ("pretrain", "optim.lr=-1", "optim.lr must be >= 0"),
    ("pretrain", "optim.momentum_teacher=1.5", "optim.momentum_teacher must be in [0, 1]"),
    ("pretrain", "train.num_workers=-1", "train.num_workers must be >= 0"),
    ("pretrain", "data.folder_fps=0", "data.folder_fps must be > 0"),
    ("pretrain", "data.source_weights={a: -1}", "data.source_weights.a must be >= 0"),
    ("pretrain", "head.out_dim=0", "head.out_dim must be >= 1"),
    ("pretrain", "loss.teacher_temp=0", "loss.teacher_temp must be > 0"),
    ("pretrain", "loss.center_momentum=1.5", "loss.center_momentum must be in [0, 1]"),
    ("pretrain", "loss.sk_iterations=0", "loss.sk_iterations must be >= 1"),
    ("pretrain", "loss.ibot_mask_ratio=[0.5,0.1]", "loss.ibot_mask_ratio must be [lo, hi]"),
    ("pretrain", "views.jitter_p=2", "views.jitter_p must be in [0, 1]"),
    ("pretrain", "views.hue=0.6", "views.hue must be in [0, 0.5]"),
    ("pretrain", "views.global_scale=[1.5,2]", "views.global_scale must be [lo, hi] with 0 <"),
    ("pretrain", "views.local_scale=[0.4,0.1]", "views.local_scale must be [lo, hi]"),
    ("pretrain", "views.crop_ratio=[0,1]", "views.crop_ratio must be [lo, hi] with 0 <"),
    ("pretrain", "views.global_frames=[4]", "views.global_frames must list"),
    ("pretrain", "views.local_frames=[0,2]", "every view needs at least one frame"),
    ("pretrain", "views.min_window_frames=4", "views.min_window_frames=4 is too small"),
    ("pretrain", "views.std=[0.2,0.2]", "views.mean and views.std must be 3 values"),
    ("probe", "probe.k=[5,0]", "probe.k must list neighbour counts >= 1, got [5, 0]"),
    ("probe", "probe.Cs=[]", "probe.Cs must list regularisation strengths > 0"),
    ("probe", "probe.temperature=0", "probe.temperature must be > 0"),
    ("probe", "probe.folds=0", "probe.folds must be >= 1"),
    ("probe", "data.test_short_side=100", "data.test_short_side=100 is smaller than "
                                          "data.crop_size=224"),
    ("classification", "optim.momentum=2", "optim.momentum must be in [0, 1]"),
    ("classification", "optim.warmup_epochs=-1", "optim.warmup_epochs must be >= 0"),
    ("classification", "protocol.val_fraction=0", "protocol.val_fraction must be in (0, 1)"),
    ("classification", "data.clips_per_video=0", "data.clips_per_video must be >= 1"),
    ("classification", "model.head_dropout=1", "model.head_dropout must be in [0, 1)"),
    ("classification", "model.positive_class=-1", "model.positive_class must be >= 0"),
    ("classification", "protocol.test_fraction=1", "protocol.test_fraction must be in [0, 1)"),
    ("segmentation", "data.rotation=-1", "data.rotation must be >= 0"),
    ("segmentation", "loss.dice_weight=-1", "loss.dice_weight must be >= 0"),
    ("detection", "model.max_size=500", "model.max_size=500 is smaller than model.min_size=600"),
    ("detection", "eval.score_threshold=2", "eval.score_threshold must be in [0, 1]"),
    ("detection", "data.frame_step=0", "data.frame_step must be >= 1"),
])
def test_out_of_range_settings_fail_at_load_time_naming_the_override(group, override,
                                                                      expected):
    with pytest.raises(ConfigError) as err:
        load_config(schema(group), None, [override])
    assert f"invalid setting in command-line override '{override}': {expected}" in str(err.value)


def test_a_range_error_blames_the_override_that_set_the_key_else_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  weight_decay_end: -1.0\n")
    blamed_file = rf"invalid setting in config {path}: optim.weight_decay_end must be >= 0"
    with pytest.raises(ConfigError, match=blamed_file):
        load_config(PretrainConfig, path, ["train.epochs=2"])
    # an override of a key that the named one merely starts with is not blamed
    with pytest.raises(ConfigError, match=blamed_file):
        load_config(PretrainConfig, path, ["optim.weight_decay=0.1"])
    with pytest.raises(ConfigError, match=r"override 'optim.weight_decay_end=-3': optim.weight"):
        load_config(PretrainConfig, path, ["optim.weight_decay_end=-2",
                                           "optim.weight_decay_end=-3"])


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
# line of the successor's code, defaults included.
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
    # the commit of the tree the package is imported from (none for an installed wheel)
    source = Path(endofm.config.__file__).parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source,
                          capture_output=True, text=True).stdout.strip()
    assert last == f"# git commit: {head or 'unknown'}"
    assert load_config(PretrainConfig, path) == cfg


# the test frame size a 96 px crop is cut from, where the tiny recipe's is smaller (the training
# sizes are checked when training starts: evaluation does not use them)
LARGER_FRAMES = {"classification": ["data.test_short_side=96"],
                 "probe": ["data.test_short_side=96"]}


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
    size = [f"{size_key}=96", *LARGER_FRAMES.get(group, [])]
    cfg = load_config(schema(group), recipe_path(group, "tiny"), [*size, f"{frames_key}=6"])
    assert (cfg.model.backbone.img_size, cfg.model.backbone.num_frames) == (96, 6)
    same = load_config(schema(group), recipe_path(group, "tiny"),
                       [*size, "model.backbone.img_size=96"])
    assert same.model.backbone.img_size == 96
    with pytest.raises(ConfigError, match=f"model.backbone.img_size=80 disagrees with "
                                          f"{size_key}=96"):
        load_config(schema(group), recipe_path(group, "tiny"),
                    [*size, "model.backbone.img_size=80"])
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
