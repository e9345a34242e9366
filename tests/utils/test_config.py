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
