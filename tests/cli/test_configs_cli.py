"""Packaged recipes: named resolution per command, paths, `endofm configs`."""

import pytest

from endofm.cli.main import main
from endofm.config import (
    RECIPES,
    ConfigError,
    load_config,
    recipe_groups,
    recipe_names,
    recipe_path,
    resolve_config,
)
from endofm.eval.probe import ProbeConfig
from endofm.ssl import PretrainConfig
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema

EXPECTED = {"pretrain": ["endofm_lv", "endofm_vitb", "endofm_vitb_release", "tiny",
                         "tiny_learns", "tiny_lv"],
            "classification": ["polypdiag", "polypdiag_release", "tiny", "tiny_robust"],
            "segmentation": ["cvc12k", "cvc12k_release", "tiny"],
            "detection": ["kumc", "tiny"], "phase": ["cholec80", "tiny"], "probe": ["tiny"]}


def schema(group):
    return {"pretrain": PretrainConfig, "probe": ProbeConfig}.get(group) or task_config_schema(
        TASKS[group])


def test_recipes_ship_inside_the_package():
    assert RECIPES.parent.name == "endofm" and (RECIPES.parent / "__init__.py").is_file()
    assert {g: recipe_names(g) for g in recipe_groups()} == EXPECTED


@pytest.mark.parametrize("group,name", [(g, n) for g, ns in EXPECTED.items() for n in ns])
def test_every_recipe_loads_under_its_command_schema(group, name):
    cfg = load_config(schema(group), resolve_config(group, name))
    assert cfg is not None


def test_name_path_and_errors(tmp_path):
    assert resolve_config("pretrain", "tiny") == RECIPES / "pretrain" / "tiny.yaml"
    own = tmp_path / "tiny"  # an existing file wins over the recipe of the same name
    own.write_text("optim:\n  epochs: 1\n")
    assert resolve_config("pretrain", own) == own
    assert resolve_config("pretrain", None) is None
    with pytest.raises(ConfigError, match="recipes: endofm_lv, endofm_vitb, .*, tiny"):
        resolve_config("pretrain", "tiyn")
    with pytest.raises(ConfigError, match="not found"):
        resolve_config("pretrain", tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="no detection recipe named 'cvc12k'"):
        recipe_path("detection", "cvc12k")


def test_configs_command_lists_and_prints(capsys):
    assert main(["configs"]) == 0
    listing = capsys.readouterr().out
    for group, names in EXPECTED.items():
        for name in names:
            assert any(line.split()[:2] == [group, name] for line in listing.splitlines())
    assert main(["configs", "segmentation", "tiny"]) == 0
    assert capsys.readouterr().out == recipe_path("segmentation", "tiny").read_text()
    assert main(["configs", "nope"]) == 1
    err = capsys.readouterr().err
    assert "groups: classification, detection, phase, pretrain, probe, segmentation" in err


def test_commands_accept_a_recipe_name(tmp_path, capsys):
    # a bad override after a named recipe: the recipe was found and merged, the key was not
    rc = main(["pretrain", "--config", "tiny", "--data", str(tmp_path), "--output",
               str(tmp_path / "out"), "optim.epochz=1"])
    assert rc == 1 and "optim.epochz" in capsys.readouterr().err
    rc = main(["finetune", "detection", "--config", "nosuch", "--data", str(tmp_path),
               "--output", str(tmp_path / "out")])
    assert rc == 1 and "no detection recipe named 'nosuch'" in capsys.readouterr().err
