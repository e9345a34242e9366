"""`make demo`: the main job of endofm on the built-in sample data, on the CPU, in minutes.

1. render the synthetic sample data (PolypDiag, CVC-12k and KUMC layouts + raw videos);
2. inspect the PolypDiag folder;
3. pre-train a tiny Endo-FM on the raw videos (the packaged `tiny` recipe);
4. fine-tune PolypDiag classification from that backbone (the `tiny` recipe);
5. evaluate the fine-tuned classifier;
6. extract window embeddings of the raw videos with the pre-trained backbone;
7. predict with the fine-tuned classifier over whole PolypDiag videos: timelines, key frames,
   one report.html per video and an index.html.

Everything is written under demo_output/. Each run starts over: the results of an earlier run
(possibly made by another endofm version, whose run folders a resume would refuse) are removed
first; the rendered sample data is kept.
Pass ``--all`` to also fine-tune segmentation and detection.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path("demo_output")
DATA = OUT / "sample_data"


def endofm(*args: str) -> None:
    print(f"\n$ endofm {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "endofm.cli.main", *args], check=True)


def clear_results() -> None:
    """Remove an earlier run's results (everything under ``OUT`` but the sample data)."""
    if OUT.is_dir():
        for child in OUT.iterdir():
            if child != DATA:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


def main() -> None:
    clear_results()
    if not (DATA / "polypdiag").is_dir():
        endofm("data", "synth", "--out", str(DATA), "--seed", "0")
    endofm("data", "inspect", str(DATA / "polypdiag"))
    endofm("pretrain", "--config", "tiny", "--data", str(DATA / "videos"),
           "--output", str(OUT / "pretrain"))
    backbone = str(OUT / "pretrain" / "backbone")
    endofm("finetune", "classification", "--config", "tiny",
           "--data", str(DATA / "polypdiag"), "--output", str(OUT / "classification"),
           "--pretrained", backbone)
    endofm("evaluate", "classification", "--config", "tiny",
           "--checkpoint", str(OUT / "classification" / "best"), "--data",
           str(DATA / "polypdiag"), "--output", str(OUT / "classification_eval"))
    tasks = ["classification"]
    if "--all" in sys.argv[1:]:
        for task, folder in (("segmentation", "cvc"), ("detection", "kumc")):
            endofm("finetune", task, "--config", "tiny", "--data",
                   str(DATA / folder), "--output", str(OUT / task), "--pretrained", backbone)
            tasks.append(task)
    endofm("extract", "--checkpoint", backbone, str(DATA / "videos"), "--output",
           str(OUT / "features"), "--quiet")
    endofm("predict", "classification", "--checkpoint", str(OUT / "classification" / "best"),
           str(DATA / "polypdiag" / "videos"), "--output", str(OUT / "predict_classification"),
           "--quiet")
    if "--all" in sys.argv[1:]:
        for task in ("segmentation", "detection"):
            every = "--stride" if task == "detection" else "--frame-step"  # predicted frames
            endofm("predict", task, "--checkpoint", str(OUT / task / "best"),
                   str(DATA / "videos"), "--output", str(OUT / f"predict_{task}"), "--quiet",
                   every, "5")
    print("\nresults:")
    for task in tasks:
        metrics = json.loads((OUT / task / "metrics.json").read_text())
        shown = {k: round(v, 3) for k, v in metrics.items()
                 if isinstance(v, float) and not k.startswith(("selection", "num_"))}
        print(f"  {task}: {shown}  ({OUT / task / 'metrics.json'})")
    print(f"\nfeatures: {OUT / 'features'} (index.csv, run.json, one .npy per video)")
    for task in tasks:
        index = OUT / f"predict_{task}" / "index.html"
        if index.is_file():
            print(f"reports ({task}): {index.resolve()}  (one report.html per video)")


if __name__ == "__main__":
    main()
