"""Does the tiny pre-training learn? k-NN probe accuracy of a randomly initialised vs a
pre-trained tiny backbone on a synthetic task where random features are weak
(``synth_probe.py`` beside it: ``polyp_drift``, a polyp or none under lighting that drifts
within each video; ``polyp``, the same under per-video lighting; ``texture``, dense fine vs
sparse coarse vessels under drifting lighting; ``motion``, camera advancing vs withdrawing),
with the pre-training's final teacher entropy / ln K, over several seeds.

    python benchmarks/ssl_probe.py [--seeds 3] [--first-seed 0] [--task polyp_drift]
        [--variant recipe] [--threads 1] [--pretrain-videos 48] [--probe-videos 48]
        [--supervised-epochs 20] [--factors] [--out DIR] [key=value ...]

Per seed: render the task (seeded), probe a random-init backbone (init seed = the seed),
pre-train with ``--config`` (default: the packaged tiny_learns recipe), the ``--variant``'s
overrides and any ``key=value`` overrides on the task's unlabelled videos (``train.seed`` = the
seed), then probe the teacher backbone; with ``--supervised-epochs`` also train the tiny
classification recipe with the labels (the ceiling: can this backbone learn the label at all?),
with ``--factors`` the k-NN accuracy of both backbones' features for the videos' nuisance
factors (``probe/factors.csv``) instead of the label.
Prints a row per seed and mean ± std; the goal is pre-trained ≥ random + 0.15 (k-NN accuracy at
the headline k) and final entropy ratio ≤ 0.8. The default task is ``polyp_drift``: the tiny
backbone cannot learn ``texture`` even with the labels (README).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from synth_probe import FACTORS, TASKS, ProbeTaskSize, synthesize_probe_task

from endofm.config import load_config, recipe_path
from endofm.eval.probe import ProbeConfig, run_probe
from endofm.ssl import PretrainConfig, pretrain
from endofm.tasks import TASKS as FINETUNE_TASKS
from endofm.tasks.base import task_config_schema
from endofm.tasks.engine import fit

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = recipe_path("pretrain", "tiny_learns")
PROBE = recipe_path("probe", "tiny")
SUPERVISED = recipe_path("classification", "tiny")  # same backbone, clips and test views
HEADLINE_K = 5
# Named recipe variants: overrides on top of the config. ``recipe``: the config as it is
# (tiny_learns: DINO + KoLeo 0.5 on the backbone's CLS, 1200 epochs); ``minutes``: the same at
# a few minutes on 2 CPU cores (300 epochs); ``quick``: 75 epochs, which does not reach the
# margin. The ablation (cumulative, from the release's loss): ``base`` (DINO alone), +
# Sinkhorn-Knopp, + iBOT, + KoLeo at the successor's weight 0.1 (docs/successor.md).
BASE = ["loss.koleo_weight=0"]
VARIANTS: dict[str, list[str]] = {
    "recipe": [],
    "minutes": ["train.epochs=300"],
    "quick": ["train.epochs=75"],
    "base": BASE,
    "sk": [*BASE, "loss.centering=sinkhorn_knopp"],
    "sk+ibot": [*BASE, "loss.centering=sinkhorn_knopp", "loss.ibot_weight=0.5"],
    "sk+ibot+koleo": ["loss.centering=sinkhorn_knopp", "loss.ibot_weight=0.5",
                      "loss.koleo_weight=0.1"],
}


def supervised_accuracy(probe_root: Path, out: Path, seed: int, device: str,
                        epochs: int) -> float:
    """Validation accuracy of the tiny classification recipe trained *with the labels* from a
    random init on the probe's training split: whether this backbone can learn the task's label
    at all in this budget. A task it cannot learn with labels cannot show that pre-training
    learns it."""
    task_cls = FINETUNE_TASKS["classification"]
    cfg = load_config(task_config_schema(task_cls), SUPERVISED, [
        f"train.device={device}", f"train.seed={seed}", f"train.epochs={epochs}",
        "train.progress=false", "protocol.selection=fixed"])
    return float(fit(task_cls(cfg), probe_root, out)["accuracy"])


def factor_tasks(probe_root: Path, out: Path) -> dict[str, Path]:
    """A PolypDiag-layout root per nuisance factor of ``probe_root/factors.csv`` (the same
    videos, ``videos/`` linked), labelled 1 where the factor is above its median over the
    training videos (``advancing`` is 0/1 already). Factors constant over the training videos
    are left out."""
    with (probe_root / "factors.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    roots = {}
    for factor in FACTORS:
        train = [float(r[factor]) for r in rows if r["split"] == "train"]
        cut = 0.5 if factor == "advancing" else float(np.median(train))
        if min(train) == max(train):
            continue
        root = out / factor
        (root / "splits").mkdir(parents=True, exist_ok=True)
        if not (root / "videos").exists():
            (root / "videos").symlink_to((probe_root / "videos").resolve(),
                                         target_is_directory=True)
        for split in ("train", "val"):
            labels = [f"{r['video']},{int(float(r[factor]) > cut)}\n"
                      for r in rows if r["split"] == split]
            (root / "splits" / f"{split}.txt").write_text("".join(labels))
        roots[factor] = root
    return roots


def factor_accuracies(probe_cfg: ProbeConfig, checkpoint: Path | None, roots: dict[str, Path],
                      out: Path, cache_dir: Path) -> dict[str, float]:
    """k-NN accuracy (headline k) of the features predicting each factor instead of the
    label: what else the features encode. ``cache_dir``: the label probe's feature cache (the
    same videos, so nothing is embedded again)."""
    key = f"knn_k{HEADLINE_K}"
    return {factor: run_probe(probe_cfg, checkpoint, root, out / factor, method="knn",
                              cache_dir=cache_dir)["probes"][key]["accuracy"]
            for factor, root in roots.items()}


def run_seed(seed: int, out: Path, pretrain_overrides: list[str], config: Path,
             device: str, task: str, size: ProbeTaskSize | None = None,
             supervised_epochs: int = 0, factors: bool = False) -> dict[str, float]:
    """One seed's row; with ``supervised_epochs`` > 0 also the supervised reference, with
    ``factors`` the nuisance-factor k-NN accuracies (``random_<factor>``,
    ``pretrained_<factor>``)."""
    data = synthesize_probe_task(out / "task", seed, task, size or ProbeTaskSize())
    probe_cfg = load_config(ProbeConfig, PROBE, [f"device={device}", f"model.init_seed={seed}",
                                                 f"probe.k=[1,{HEADLINE_K},10]"])
    random = run_probe(probe_cfg, None, data["probe"], out / "probe_random", method="all")
    cfg = load_config(PretrainConfig, config, [f"train.seed={seed}", f"train.device={device}",
                                               "train.progress=false", *pretrain_overrides])
    tic = time.perf_counter()
    report = pretrain(cfg, data["pretrain"], out / "pretrain")
    minutes = (time.perf_counter() - tic) / 60
    trained = run_probe(probe_cfg, out / "pretrain" / "backbone", data["probe"],
                        out / "probe_pretrained", method="all")
    key = f"knn_k{HEADLINE_K}"
    extra = ({"supervised": supervised_accuracy(data["probe"], out / "supervised", seed,
                                                device, supervised_epochs)}
             if supervised_epochs else {})
    if factors:
        roots = factor_tasks(data["probe"], out / "factor_tasks")
        for name, checkpoint in (("random", None), ("pretrained", out / "pretrain" / "backbone")):
            found = factor_accuracies(probe_cfg, checkpoint, roots, out / f"factors_{name}",
                                      out / f"probe_{name}" / "features")
            extra |= {f"{name}_{factor}": acc for factor, acc in found.items()}
    return {"random": random["probes"][key]["accuracy"],
            "pretrained": trained["probes"][key]["accuracy"],
            "entropy_ratio": report["final_entropy_ratio"],
            "collapse_warning": float(report["collapse_warning"]),
            "pretrain_minutes": minutes,
            **{f"random_{k}": v["accuracy"] for k, v in random["probes"].items()},
            **{f"pretrained_{k}": v["accuracy"] for k, v in trained["probes"].items()},
            **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--variant", default="recipe", choices=sorted(VARIANTS))
    parser.add_argument("--config", type=Path, default=PRETRAIN, help="pre-training YAML")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--task", default="polyp_drift", choices=TASKS)
    parser.add_argument("--pretrain-videos", type=int, default=ProbeTaskSize.pretrain_videos)
    parser.add_argument("--probe-videos", type=int, default=ProbeTaskSize.train_videos,
                        help="labelled videos in each of the probe's train and val splits")
    parser.add_argument("--supervised-epochs", type=int, default=0,
                        help="also train the tiny classification recipe with the labels for "
                             "this many epochs (0: off): can the backbone learn the task at all?")
    parser.add_argument("--factors", action="store_true",
                        help="also probe what else the features encode: k-NN accuracy for each "
                             "nuisance factor (brightness, vignette, lumen size, camera "
                             "direction) above vs below its median")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 avoids thrashing on a shared, loaded machine)")
    parser.add_argument("--out", type=Path, default=None,
                        help="work folder (default: a temporary one, removed afterwards)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="pre-training overrides, e.g. train.epochs=20")
    args = parser.parse_args()
    overrides = [*VARIANTS[args.variant], *args.overrides]
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        rows = []
        print(f"variant {args.variant}: {' '.join(overrides) or '(config as is)'}")
        print("seed  random  pretrained  delta  entropy_ratio  collapse  minutes"
              "  (linear probe: random  pretrained)")
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            size = ProbeTaskSize(pretrain_videos=args.pretrain_videos,
                                 train_videos=args.probe_videos, val_videos=args.probe_videos)
            r = run_seed(seed, out / f"seed_{seed}", overrides, args.config, args.device,
                         args.task, size, args.supervised_epochs, args.factors)
            rows.append(r)
            supervised = f"  supervised {r['supervised']:.3f}" if "supervised" in r else ""
            print(f"{seed:4d}  {r['random']:6.3f}  {r['pretrained']:10.3f}  "
                  f"{r['pretrained'] - r['random']:+5.3f}  {r['entropy_ratio']:13.3f}  "
                  f"{int(r['collapse_warning']):8d}  {r['pretrain_minutes']:7.1f}"
                  f"  {r['random_linear']:6.3f}  {r['pretrained_linear']:6.3f}{supervised}",
                  flush=True)
            encoded = [f"{f} {r[f'random_{f}']:.2f} -> {r[f'pretrained_{f}']:.2f}"
                       for f in FACTORS if f"random_{f}" in r]
            if encoded:
                print(f"      factors k-NN (random -> pretrained): {', '.join(encoded)}",
                      flush=True)
        summary = {k: (float(np.mean([r[k] for r in rows])), float(np.std([r[k] for r in rows])))
                   for k in rows[0]}
        print(f"k-NN accuracy (k={HEADLINE_K}) mean ± std over {len(rows)} seeds:")
        for key in ("random", "pretrained", "entropy_ratio", "pretrain_minutes",
                    "random_linear", "pretrained_linear", "supervised",
                    *(f"{m}_{f}" for f in FACTORS for m in ("random", "pretrained"))):
            if key not in summary:
                continue
            mean, std = summary[key]
            print(f"  {key:22s} {mean:.3f} ± {std:.3f}")
        gain = summary["pretrained"][0] - summary["random"][0]
        ok = gain >= 0.15 and summary["entropy_ratio"][0] <= 0.8
        print(f"  gain {gain:+.3f} (goal ≥ +0.15), entropy ratio goal ≤ 0.8: "
              f"{'met' if ok else 'NOT met'}")
        print(json.dumps({"variant": args.variant, "task": args.task, "overrides": overrides,
                          "config": str(args.config), "summary": summary}))


if __name__ == "__main__":
    main()
