"""report.html in a real browser: headless Chromium shows the timeline image."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from endofm.cli.main import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TAB_BLUE = np.array([31, 119, 180])  # matplotlib's first line colour: only the timeline has it


def screenshot(page: Path, out: Path, profile: Path) -> np.ndarray:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--no-first-run", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
           "--window-size=1200,1200", f"--screenshot={out}", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(out).convert("RGB")).astype(int)


def blue_pixels(image: np.ndarray) -> int:
    return int((np.abs(image - TAB_BLUE).sum(-1) < 40).sum())


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install "
                                             "chromium); the report is checked by parsing only")
def test_chromium_renders_the_report_with_its_timeline(task_dirs, videos, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "classification", "--checkpoint", str(task_dirs["classification"]),
                 str(videos / "a.mp4"), "--output", str(out), "--frame-step", "1",
                 "--workers", "0", "--device", "cpu", "--precision", "fp32", "--quiet"]) == 0
    page = out / "a" / "report.html"
    shown = screenshot(page, tmp_path / "shown.png", tmp_path / "profile1")
    assert blue_pixels(shown) > 200
    (out / "a" / "timeline.png").unlink()  # the same page without its image: no curve drawn
    broken = screenshot(page, tmp_path / "broken.png", tmp_path / "profile2")
    assert blue_pixels(broken) < 20
