"""What each part of the successor's recipe buys: the same tiny pre-training budget with the
base recipe (configs/pretrain/tiny.yaml), + Sinkhorn-Knopp centring, + the iBOT masked-patch
loss, + KoLeo (cumulative), each over several seeds, scored by a k-NN probe of the teacher
backbone on the synthetic PolypDiag-layout set (endofm.ssl.monitor.knn_probe). A randomly
initialised backbone is the floor.

    python benchmarks/ssl_ablation.py [--epochs 6] [--seeds 0 1 2] [--data-seed 0] [--out DIR]

Prints per variant the probe accuracy and F1 (class 1), mean ± std over the seeds.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

import endofm
from endofm.config import load_config
from endofm.data.synth import synthesize
from endofm.ssl import PretrainConfig, pretrain
from endofm.ssl.monitor import knn_probe

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "pretrain" / "tiny.yaml"
SK = ["loss.centering=sinkhorn_knopp"]
IBOT = ["loss.ibot_weight=0.5"]
KOLEO = ["loss.koleo_weight=0.1"]
VARIANTS = {"base": [], "+ Sinkhorn-Knopp": SK, "+ iBOT": SK + IBOT,
            "+ KoLeo": SK + IBOT + KOLEO}
PROBE = dict(k=5, num_frames=4, sampling_rate=16, precision="fp32")


def probe(backbone: torch.nn.Module, data: dict[str, Path], img_size: int) -> dict[str, float]:
    return knn_probe(backbone, data["polypdiag"], img_size, PROBE["num_frames"],
                     PROBE["sampling_rate"], PROBE["k"], torch.device("cpu"),
                     PROBE["precision"])


def run_variant(overrides: list[str], seed: int, epochs: int, data: dict[str, Path],
                out: Path) -> dict[str, float]:
    cfg = load_config(PretrainConfig, CONFIG,
                      [*overrides, f"run.seed={seed}", f"optim.epochs={epochs}",
                       "run.progress=false", "run.device=cpu", "run.save_every_steps=0"])
    pretrain(cfg, data["videos"], out)
    backbone = endofm.create_model(cfg.model.name, pretrained=out / "backbone")
    return probe(backbone, data, cfg.model.img_size)


def random_floor(seed: int, data: dict[str, Path]) -> dict[str, float]:
    cfg = load_config(PretrainConfig, CONFIG)
    torch.manual_seed(seed)
    m = cfg.model
    backbone = endofm.create_model(m.name, img_size=m.img_size, num_frames=m.num_frames,
                                   embed_dim=m.embed_dim, depth=m.depth, num_heads=m.num_heads)
    return probe(backbone, data, m.img_size)


def summary(scores: list[dict[str, float]]) -> str:
    parts = []
    for key in ("monitor/knn_accuracy", "monitor/knn_f1"):
        values = np.array([s[key] for s in scores])
        parts.append(f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}")
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        data = synthesize(out / "data", seed=args.data_seed)
        print(f"tiny pre-training, {args.epochs} epochs, seeds {args.seeds}, synthetic data "
              f"seed {args.data_seed}; k-NN probe (k={PROBE['k']}) on its PolypDiag split")
        print("| variant | k-NN accuracy | k-NN F1 |\n|---|---|---|")
        floor = [random_floor(seed, data) for seed in args.seeds]
        print(f"| random init | {summary(floor)} |", flush=True)
        for name in args.variants:
            scores = [run_variant(VARIANTS[name], seed, args.epochs, data,
                                  out / f"{name.strip('+ ')}-{seed}") for seed in args.seeds]
            print(f"| {name} | {summary(scores)} |", flush=True)


if __name__ == "__main__":
    main()
