"""A normalisation setting with a standard deviation of 0 (a division by zero: every pixel of
that channel becomes inf or NaN) is refused when the settings are read, naming the setting."""

import pytest

from endofm.config import ConfigError, load_config, recipe_path
from endofm.ssl import PretrainConfig
from endofm.tasks import TASKS
from endofm.tasks.base import task_config_schema

SETTINGS = [  # (schema, recipe, the setting's section)
    (PretrainConfig, ("pretrain", "tiny"), "views"),
    (task_config_schema(TASKS["classification"]), ("classification", "tiny"), "data"),
]


@pytest.mark.parametrize(("schema", "recipe", "section"), SETTINGS)
@pytest.mark.parametrize("std", ["[0.229,0.0,0.225]", "[0.0,0.0,0.0]", "[0.229,0.224,-0.1]"])
def test_a_zero_or_negative_std_is_refused(schema, recipe, section, std):
    with pytest.raises((ConfigError, ValueError), match=rf"{section}\.std.*std > 0"):
        load_config(schema, recipe_path(*recipe), [f"{section}.std={std}"])


@pytest.mark.parametrize(("schema", "recipe", "section"), SETTINGS)
def test_a_small_positive_std_is_accepted(schema, recipe, section):
    cfg = load_config(schema, recipe_path(*recipe), [f"{section}.std=[1e-6,0.5,2.0]"])
    assert list(getattr(cfg, section).std) == [1e-6, 0.5, 2.0]
