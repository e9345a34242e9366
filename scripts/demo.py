"""`make demo`: a first run of endofm on generated data, on the CPU, in well under a minute.

Builds a small Endo-FM backbone, writes it in the endofm format, inspects it with the CLI and
embeds a generated clip. Outputs go to demo_output/.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import endofm

OUT = Path("demo_output")


def run(*args: str) -> None:
    print("$ endofm " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "endofm.cli.main", *args], check=True)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = endofm.create_model("endofm_vit_tiny_patch16", img_size=64, num_frames=4, depth=4)
    endofm.save_pretrained(model, OUT / "backbone")
    run("info", str(OUT / "backbone"))
    clip = torch.rand(2, 3, 4, 64, 64)
    with torch.no_grad():
        emb = endofm.create_model("endofm_vit_tiny_patch16",
                                  pretrained=OUT / "backbone").eval()(clip)
    print(f"embedded a generated clip {tuple(clip.shape)} -> {tuple(emb.shape)}")


if __name__ == "__main__":
    main()
