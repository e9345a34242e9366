"""``endofm probe`` on the sample data: metrics.json keys, cached features reused."""

import json
from dataclasses import replace

import numpy as np

import endofm.eval.probe as probe_module
from endofm.cli.main import main
from endofm.eval.metrics import classification_metrics

TINY = "tiny"  # the packaged recipe, by name


def test_probe_writes_finetuning_keys_and_reuses_cached_features(sample_data, tmp_path,
                                                                  monkeypatch, capsys):
    args = ["probe", "--config", TINY, "--data", str(sample_data["polypdiag"]),
            "--output", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
            "data.test_clips=1", "probe.k=[1,3,40]", "device=cpu"]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # 16 training videos: k=40 is capped, and says so
    assert [metrics["probes"][f"knn_k{k}"]["k_used"] for k in (1, 3, 40)] == [1, 3, 16]
    assert "knn_k40: accuracy" in (out := capsys.readouterr().out)
    assert "(k=40 > 16 training videos: all of them vote)" in out
    assert "knn_k3: accuracy" in out and "(k=3" not in out
    finetune_keys = set(classification_metrics(np.array([0, 1]), np.eye(2)))
    assert finetune_keys <= set(metrics)
    assert list(metrics["probes"]) == ["knn_k1", "knn_k3", "knn_k40", "linear"]
    assert metrics["probe"] == "knn_k1" and metrics["num_test_items"] == 8
    assert metrics["accuracy"] == metrics["probes"]["knn_k1"]["accuracy"]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # train and val

    def no_extraction(*_args, **_kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(probe_module, "embed_videos", no_extraction)
    assert main([*args, "--method", "linear"]) == 0
    again = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert again["probe"] == "linear"
    assert again["probes"]["linear"] == metrics["probes"]["linear"]
    # another backbone seed is another cache entry: extraction is needed again
    capsys.readouterr()
    assert main([*args, "model.init_seed=1", "--method", "knn"]) == 1  # the CLI reports it
    assert "features should come from the cache" in capsys.readouterr().err


def test_relabelled_videos_reuse_cached_features(sample_data, tmp_path, monkeypatch):
    """The same videos under other labels (another task on them) are the same features."""
    from endofm.config import load_config, recipe_path
    from endofm.data import read_polypdiag
    from endofm.eval.probe import ProbeConfig, build_backbone, split_features

    cfg = load_config(ProbeConfig, recipe_path("probe", TINY), ["device=cpu",
                                                               "data.test_clips=1"])
    items = read_polypdiag(sample_data["polypdiag"], "val")
    backbone = build_backbone(cfg, None)
    first, labels = split_features(cfg, backbone, "w", items, tmp_path)
    flipped = [replace(it, label=1 - it.label) for it in items]

    def no_extraction(*_args, **_kwargs):
        raise AssertionError("features should come from the cache")

    monkeypatch.setattr(probe_module, "embed_videos", no_extraction)
    again, new_labels = split_features(cfg, backbone, "w", flipped, tmp_path)
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(new_labels, 1 - labels)
