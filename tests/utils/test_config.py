from dataclasses import dataclass, field

import pytest

from endofm.config import ConfigError, load_config, save_run_config


@dataclass
class Optim:
    lr: float = 0.1
    epochs: int = 3


@dataclass
class Schema:
    name: str = "run"
    optim: Optim = field(default_factory=Optim)


def test_yaml_with_base_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\noptim:\n  lr: 0.5\n")
    (tmp_path / "exp.yaml").write_text("defaults: base.yaml\noptim:\n  epochs: 7\n")
    cfg = load_config(Schema, tmp_path / "exp.yaml", ["optim.lr=0.25"])
    assert (cfg.name, cfg.optim.lr, cfg.optim.epochs) == ("base", 0.25, 7)


def test_unknown_key_and_bad_type_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config(Schema, None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="epochs"):
        load_config(Schema, None, ["optim.epochs=many"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Schema, tmp_path / "missing.yaml")


def test_save_run_config(tmp_path):
    path = save_run_config(load_config(Schema), tmp_path)
    text = path.read_text()
    assert "lr: 0.1" in text and "# git commit:" in text


def test_invalid_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noptim:\n  lr: 0.1\n   epochs: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(Schema, bad)
    assert str(err.value).startswith(f"invalid YAML in {bad}, line 4")
    assert "\n" not in str(err.value)


def test_override_errors_blame_the_command_line(tmp_path):
    (tmp_path / "ok.yaml").write_text("optim:\n  lr: 0.5\n")
    with pytest.raises(ConfigError, match=r"command-line override 'optim\.lr': .*no '='"):
        load_config(Schema, tmp_path / "ok.yaml", ["optim.epochs=2", "optim.lr"])
    with pytest.raises(ConfigError) as err:
        load_config(Schema, tmp_path / "ok.yaml", ["optim.epochs=many"])
    message = str(err.value)
    assert "command-line override 'optim.epochs=many'" in message and "ok.yaml" not in message
    (tmp_path / "typo.yaml").write_text("optim:\n  lrr: 0.5\n")
    with pytest.raises(ConfigError, match=r"in config .*typo\.yaml \(key optim\.lrr\)"):
        load_config(Schema, tmp_path / "typo.yaml", ["optim.epochs=2"])


def test_a_value_yaml_cannot_read_is_the_text_as_typed():
    """``*`` starts a YAML alias: ``name=*/left_frames`` is that text, not a scanner error."""
    assert load_config(Schema, None, ["name=*/left_frames"]).name == "*/left_frames"
    assert load_config(Schema, None, ["name=[unclosed"]).name == "[unclosed"
    with pytest.raises(ConfigError, match="optim.epochs"):
        load_config(Schema, None, ["optim.epochs=*"])


def test_base_settings_sit_between_defaults_and_file(tmp_path):
    (tmp_path / "exp.yaml").write_text("optim:\n  epochs: 9\n")
    cfg = load_config(Schema, tmp_path / "exp.yaml", base={"name": "trained",
                                                            "optim": {"lr": 0.7, "epochs": 5}})
    assert (cfg.name, cfg.optim.lr, cfg.optim.epochs) == ("trained", 0.7, 9)
    with pytest.raises(ConfigError, match="from the run"):
        load_config(Schema, base={"nope": 1}, base_source="from the run")


def test_explicit_settings_lists_only_what_was_given(tmp_path):
    from endofm.config import explicit_settings

    (tmp_path / "exp.yaml").write_text("optim:\n  epochs: 9\n")
    assert explicit_settings(tmp_path / "exp.yaml", ["name=x"]) == {"optim.epochs": 9,
                                                                    "name": "x"}


def test_defaults_name_a_file_beside_or_a_packaged_recipe(tmp_path):
    """A recipe printed by ``endofm configs`` and saved elsewhere keeps its base: packaged
    recipes name theirs as GROUP/NAME, which falls back to the package."""
    from endofm.config import recipe_path
    from endofm.ssl import PretrainConfig

    copy = tmp_path / "my_recipe.yaml"
    copy.write_text(recipe_path("pretrain", "tiny_learns").read_text())
    assert "defaults: pretrain/tiny" in copy.read_text()
    packaged = load_config(PretrainConfig, recipe_path("pretrain", "tiny_learns"))
    assert load_config(PretrainConfig, copy) == packaged
    # a file beside it wins over the packaged recipe of that name
    (tmp_path / "pretrain").mkdir()
    (tmp_path / "pretrain" / "tiny").write_text("train:\n  epochs: 3\n")
    beside = load_config(PretrainConfig, copy)
    assert beside.train.epochs == 1200 and beside.model.backbone.depth != 2  # not tiny.yaml's


def test_a_missing_or_looping_base_is_one_line(tmp_path):
    (tmp_path / "a.yaml").write_text("defaults: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("defaults: a.yaml\nname: b\n")
    with pytest.raises(ConfigError) as err:
        load_config(Schema, tmp_path / "a.yaml")
    assert str(err.value) == (f"{tmp_path / 'a.yaml'}: its defaults: chain loops back to itself "
                              f"({tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> "
                              f"{tmp_path / 'a.yaml'})")
    (tmp_path / "c.yaml").write_text("defaults: nosuch/tiny\n")
    with pytest.raises(ConfigError) as err:
        load_config(Schema, tmp_path / "c.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'c.yaml'}: its defaults: 'nosuch/tiny' is "
                                     f"neither a file beside it ({tmp_path / 'nosuch/tiny'}) "
                                     "nor a packaged recipe GROUP/NAME")
    (tmp_path / "d.yaml").write_text("defaults: pretrain/nosuch\n")
    with pytest.raises(ConfigError, match="no pretrain recipe named 'nosuch'"):
        load_config(Schema, tmp_path / "d.yaml")


def test_a_value_where_a_section_belongs_names_the_section(tmp_path):
    """(OmegaConf's own message was "Merge error: int is not a subclass of Optim", no key.)"""
    (tmp_path / "flat.yaml").write_text("optim: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(Schema, tmp_path / "flat.yaml")
    assert str(err.value) == (f"invalid setting in config {tmp_path / 'flat.yaml'}: optim is a "
                              "section of settings (key: value lines under it), got 3")
    with pytest.raises(ConfigError, match=r"^invalid setting in command-line override "
                                          r"'optim=fast': optim is a section"):
        load_config(Schema, None, ["optim=fast"])


def test_an_unresolved_interpolation_does_not_hide_the_merge_error(tmp_path):
    """Looking for a section given a plain value must not resolve interpolations (it did:
    "Interpolation key 'oops' not found" and OmegaConf's key lines instead of the error)."""
    (tmp_path / "interp.yaml").write_text("name: ${oops}\noptim:\n  lr: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"\(key optim\.lr\): Value '\[1, 2\]'"):
        load_config(Schema, tmp_path / "interp.yaml")
    (tmp_path / "name.yaml").write_text("name: ${oops}\n")
    with pytest.raises(ConfigError, match=r"^invalid setting in command-line override "
                                          r"'name=\{a: 1\}' \(key name\)"):
        load_config(Schema, tmp_path / "name.yaml", ["name={a: 1}"])
