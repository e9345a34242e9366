"""The generated references describe the code: every config key with the range its checks
enforce and its comment, every command and option, every public name."""

from __future__ import annotations

import importlib
import re
from enum import Enum

import pytest
import yaml
from omegaconf import OmegaConf

import endofm
from endofm.cli.main import build_parser
from endofm.cli.reference import (
    api_reference,
    cli_reference,
    commands,
    config_reference,
    config_schemas,
)
from endofm.config import ConfigError, flatten, load_config

ROW = re.compile(r"^\| `(?P<key>[^`]+)` \| (?P<type>[^|]+) \| `(?P<default>[^`]*)` \| "
                 r"(?P<allowed>.*?) \| (?P<meaning>.*) \|$", re.M)


@pytest.fixture(scope="module")
def config_page() -> str:
    return config_reference()


def command_rows(page: str, command: str) -> dict[str, dict[str, str]]:
    """The table rows of one command's part of the configuration page, by key."""
    part = page.split(f"## `endofm {command}`", 1)[1].split("\n## ", 1)[0]
    return {m["key"]: m.groupdict() for m in ROW.finditer(part)}


@pytest.mark.parametrize("command", list(config_schemas()))
def test_every_config_key_is_in_the_reference_with_its_default(config_page: str, command: str):
    schema = config_schemas()[command]
    defaults = flatten(OmegaConf.to_container(OmegaConf.structured(schema)))
    rows = command_rows(config_page, command)
    assert sorted(rows) == sorted(defaults)
    for key, value in defaults.items():
        expected = [v.value if isinstance(v, Enum) else v for v in value] \
            if isinstance(value, list) else value.value if isinstance(value, Enum) else value
        assert yaml.safe_load(rows[key]["default"]) == expected, key


@pytest.mark.parametrize("command", list(config_schemas()))
def test_every_config_key_has_a_meaning(config_page: str, command: str):
    rows = command_rows(config_page, command)
    assert rows
    blank = sorted(key for key, row in rows.items() if not row["meaning"].strip())
    assert not blank, f"keys of `endofm {command}` without a comment in their schema: {blank}"


@pytest.mark.parametrize("command", list(config_schemas()))
def test_a_value_below_a_documented_minimum_is_rejected(config_page: str, command: str):
    """Each ``≥ N`` / ``> N`` the reference shows is what the schema's checks enforce: a value
    below it is refused with an error naming the key and that same bound."""
    checked = 0
    for key, row in command_rows(config_page, command).items():
        bound = re.fullmatch(r"(≥|>) (-?[\d.]+)", row["allowed"].strip())
        if bound is None or row["type"].strip() not in ("int", "float"):
            continue
        minimum = float(bound[2])
        below = minimum if bound[1] == ">" else minimum - 1
        value = int(below) if row["type"].strip() == "int" else below
        enforced = f"{key} must be {'>=' if bound[1] == '≥' else '>'} {bound[2]}"
        with pytest.raises(ConfigError, match=re.escape(enforced)):
            load_config(config_schemas()[command], None, [f"{key}={value}"])
        checked += 1
    assert checked >= 3


def test_ranges_choices_and_meanings_come_from_the_code(config_page: str):
    rows = command_rows(config_page, "pretrain")
    assert rows["loss.center_momentum"]["allowed"] == "[0, 1]"
    assert rows["loss.teacher_temp"]["allowed"] == "> 0"
    assert rows["loss.ibot_mask_ratio"]["allowed"] == "`[lo, hi]`, 0 ≤ lo ≤ hi ≤ 1"
    assert "`sinkhorn_knopp`" in rows["loss.centering"]["allowed"]
    assert rows["model.backbone.grad_checkpointing"]["meaning"] == \
        "recompute each block in the backward pass"
    task = next(c for c in config_schemas() if c.startswith("finetune classification"))
    train = command_rows(config_page, task)
    assert train["train.ema_decay"]["allowed"] == "[0, 1)"  # from require_in_range, high open


def test_every_command_and_option_is_in_the_cli_reference():
    page = cli_reference()
    for path, parser in commands(build_parser()):
        assert f"`{path}`" in page
        for action in parser._actions:
            for option in action.option_strings:
                assert f"`{option}" in page or option in ("-h", "--help"), (path, option)


def test_the_api_page_names_every_public_name_where_it_is_defined():
    page = api_reference()
    for name in endofm.__all__:
        if name.startswith("_"):
            continue
        obj = getattr(endofm, name)
        directive = f"::: {obj.__module__}.{obj.__qualname__}"
        assert directive in page
        assert getattr(importlib.import_module(obj.__module__), obj.__qualname__) is obj
