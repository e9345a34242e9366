"""Does a pre-training recipe keep informative teacher targets on videos it was not tuned on?

    OMP_NUM_THREADS=1 python benchmarks/tiny_recipe_entropy.py [--config tiny]
        [--seeds 1 2 3 4 5] [--styles white_light nbi] [--out DIR] [key=value ...]

For every seed and style, render the sample pre-training videos (``endofm data synth``'s raw
videos at the demo's scale: 4 videos of 8 s), run ``endofm pretrain --config CONFIG`` on them
(with any ``key=value`` overrides) and read its ``metrics.jsonl``: the final teacher entropy /
ln K (1 = uniform targets: nothing to learn; the goal is <= 0.8), its mean over the last
epoch, the final embedding spread (``embedding_std``, the collapse monitor's second sign),
whether the run warned of collapse, and the command's wall-clock and CPU seconds. Prints one
Markdown row per render and the mean of each column.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from endofm.data.synth import SCALES, synth_pretrain_videos
from endofm.data.synth_render import get_style

COLUMNS = ("final_ratio", "last_epoch_ratio", "embedding_std", "wall_s", "cpu_s")


def render(out: Path, seed: int, style: str) -> Path:
    """The demo-scale raw pre-training videos of ``seed`` in ``style``."""
    return synth_pretrain_videos(out, seed, SCALES["small"], get_style(style))


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def pretrain(config: str, videos: Path, out: Path, overrides: list[str]) -> dict[str, object]:
    """Run ``endofm pretrain`` and summarise its log; raises if the command fails."""
    cmd = [sys.executable, "-m", "endofm.cli.main", "pretrain", "--config", config,
           "--data", str(videos), "--output", str(out), "--quiet", *overrides]
    start, cpu = time.perf_counter(), children_cpu_s()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "entropy_ratio" in r]
    last_epoch = [r["entropy_ratio"] for r in rows if r["epoch"] == rows[-1]["epoch"]]
    return {"final_ratio": rows[-1]["entropy_ratio"],
            "last_epoch_ratio": sum(last_epoch) / len(last_epoch),
            "embedding_std": rows[-1]["embedding_std"],
            "warned": "CollapseWarning" in done.stderr,
            "wall_s": time.perf_counter() - start, "cpu_s": children_cpu_s() - cpu}


def print_table(results: list[tuple[int, str, dict]]) -> None:
    print("| seed | style | final entropy / ln K | last-epoch mean | embedding std | "
          "collapse warning | wall s | CPU s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, style, r in results:
        print(f"| {seed} | {style} | {r['final_ratio']:.3f} | {r['last_epoch_ratio']:.3f} | "
              f"{r['embedding_std']:.3f} | {'yes' if r['warned'] else 'no'} | "
              f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} |")
    means = {k: sum(r[k] for _, _, r in results) / len(results) for k in COLUMNS}
    warned = sum(r["warned"] for _, _, r in results)
    print(f"| mean | | {means['final_ratio']:.3f} | {means['last_epoch_ratio']:.3f} | "
          f"{means['embedding_std']:.3f} | {warned}/{len(results)} | {means['wall_s']:.1f} | "
          f"{means['cpu_s']:.1f} |")
    worst = max(r["final_ratio"] for _, _, r in results)
    print(f"\nworst final entropy ratio {worst:.3f} ({'<=' if worst <= 0.8 else '>'} 0.8)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", help="pre-training recipe or YAML path")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--styles", nargs="+", default=["white_light", "nbi"])
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    parser.add_argument("overrides", nargs="*", help="key=value settings for every run")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="tiny_recipe_entropy_"))
    results = []
    for seed in args.seeds:
        for style in args.styles:
            here = root / f"seed{seed}_{style}"
            videos = render(here / "data", seed, style)
            results.append((seed, style, pretrain(args.config, videos, here / "run",
                                                  args.overrides)))
            r = results[-1][2]
            print(f"seed {seed} {style}: final entropy ratio {r['final_ratio']:.3f}",
                  file=sys.stderr, flush=True)
    print_table(results)


if __name__ == "__main__":
    main()
