"""Pre-training's lr: ``optim.lr`` per 256 clips scaled by the global batch (the release's rule),
or as given with ``optim.scale_lr_with_batch=false``."""

import pytest

from endofm.config import load_config, recipe_path
from endofm.ssl import PretrainConfig
from endofm.ssl.trainer import PretrainTrainer
from endofm.utils.distributed import init_distributed

FAST = ["model.backbone.depth=1", "head.out_dim=64", "head.hidden_dim=64", "head.bottleneck_dim=16",
        "train.batch_size=2", "train.epochs=2", "train.progress=false", "train.device=cpu",
        "optim.lr=0.2", "optim.warmup_epochs=1"]


@pytest.mark.parametrize("scale,peak", [("true", 0.2 * 2 / 256), ("false", 0.2)])
def test_peak_lr_follows_the_switch(sample_data, tmp_path, scale, peak):
    cfg = load_config(PretrainConfig, recipe_path("pretrain", "tiny"),
                      [*FAST, f"optim.scale_lr_with_batch={scale}"])
    trainer = PretrainTrainer(cfg, sample_data["videos"], tmp_path, init_distributed("cpu"))
    assert max(trainer.lr.values) == pytest.approx(peak)
