"""Phase recognition on synthetic procedures where order alone tells two phases apart.

    python benchmarks/phase.py [--seeds 0 1 2] [--videos 16] [--epochs 40] [--quick]

Each seed renders its own procedures (``endofm.data.phase.synth``: four phases in a fixed
order, each 10–25 s; the second and the fourth share one look, drawn per seed, so frame by
frame they are the same) in the Cholec80 layout, split by the Cholec80 proportions (half
train, a fifth of that validation, half test). Stage 1 extracts frozen features of a randomly
initialised tiny Endo-FM backbone (1 window of 2 frames per second, 32 px); then, on the same
features, it prints the test accuracy (mean over videos) of

- a per-window classifier (logistic regression on each window's feature alone);
- the causal temporal model (``model.causal=true``, no future windows);
- the offline temporal model (``model.causal=false``);

and the time each seed took. Goal: both temporal models clearly above the per-window
classifier (which cannot beat chance on the two look-alike phases), the offline one ≥ 0.9.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from endofm.config import load_config, recipe_path
from endofm.data.phase.synth import ProcedureSpec, synth_procedures
from endofm.inference.phase import prepare_features
from endofm.tasks.engine import fit
from endofm.tasks.phase.config import PhaseConfig
from endofm.tasks.phase.task import PhaseTask
from endofm.utils.progress import set_quiet

SPEC = ProcedureSpec(num_phases=4, alike=(1, 3), phase_s=(10.0, 25.0), size=32, fps=5.0)


def per_window_accuracy(task: PhaseTask, root: Path) -> float:
    """Logistic regression on single windows: mean test accuracy over videos."""
    train = task.read_items(root, "train")
    test = task.read_items(root, "test")
    clf = LogisticRegression(max_iter=2000)
    clf.fit(np.concatenate([it.features for it in train]),
            np.concatenate([it.labels for it in train]))
    return float(np.mean([(clf.predict(it.features) == it.labels).mean() for it in test]))


def run_seed(seed: int, videos: int, epochs: int, work: Path) -> dict[str, float]:
    start = time.perf_counter()
    root = synth_procedures(work / f"data{seed}", num_videos=videos, seed=seed, spec=SPEC)
    cfg = load_config(PhaseConfig, recipe_path("phase", "tiny"),
                      [f"train.epochs={epochs}", f"train.seed={seed}", "train.progress=false"])
    staged = prepare_features(cfg, root, work / f"run{seed}")
    extracted = time.perf_counter()
    task = PhaseTask(staged)
    row = {"per_window": per_window_accuracy(task, root)}
    for name, causal in (("causal", True), ("offline", False)):
        run_cfg = copy.deepcopy(staged)
        run_cfg.model.causal = causal
        with contextlib.redirect_stdout(io.StringIO()):  # the engine's epoch lines
            row[name] = fit(PhaseTask(run_cfg), root, work / f"run{seed}" / name)["accuracy"]
    row |= {"extract_s": extracted - start, "total_s": time.perf_counter() - start}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="8 videos, 15 epochs, seed 0")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.videos, args.epochs = [0], 8, 15
    set_quiet(True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows[seed] = run_seed(seed, args.videos, args.epochs, Path(tmp))
            r = rows[seed]
            print(f"seed {seed}: per-window {r['per_window']:.3f}  causal {r['causal']:.3f}  "
                  f"offline {r['offline']:.3f}  ({r['total_s']:.0f} s, features "
                  f"{r['extract_s']:.0f} s)", flush=True)
    print("\n| | per-window | causal TCN | offline TCN | time |\n|---|---|---|---|---|")
    for seed, r in rows.items():
        print(f"| seed {seed} | {r['per_window']:.3f} | {r['causal']:.3f} | "
              f"{r['offline']:.3f} | {r['total_s']:.0f} s |")
    mean = {k: np.mean([r[k] for r in rows.values()]) for k in ("per_window", "causal",
                                                               "offline", "total_s")}
    print(f"| mean | {mean['per_window']:.3f} | {mean['causal']:.3f} | "
          f"{mean['offline']:.3f} | {mean['total_s']:.0f} s |")


if __name__ == "__main__":
    main()
