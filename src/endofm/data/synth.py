"""Built-in synthetic sample data in the public layouts (``endofm data synth``).

``synthesize(out_dir, seed)`` writes, deterministically for a seed:

- ``videos/{colonoscopic,ldpolyp}/*.mp4``: raw videos for pre-training (about 8 s at 30 fps);
- ``polypdiag/videos/*.mp4`` + ``polypdiag/splits/{train,val}.txt`` (``name.mp4,label``;
  1 = abnormal: polyps visible, 0 = normal);
- ``cvc/CVC-ClinicDB/{Original,Ground Truth}/{i}.tif`` (1-based frame numbers, masks 255 =
  polyp) + ``cvc/train.txt``, ``cvc/test.txt`` (``first_frame length`` lines);
- ``kumc/{train,val,test}2019/{Image,Annotation}/<video>/<n>.{jpg,xml}`` (Pascal VOC; every
  frame has an XML file, frames without a visible polyp have no ``<object>``).

Every video/sequence gets its own random stream ``SeedSequence([seed, part, index])`` so the
output does not depend on the order parts are written in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
from PIL import Image

from endofm.data.pyav import av
from endofm.data.synth_render import (
    ADENOMATOUS,
    CLASS_NAMES,
    DEFAULT_STYLE,
    HYPERPLASTIC,
    Style,
    get_style,
    mask_box,
    random_camera,
    random_scene,
    render_frame,
)
from endofm.data.video import VideoWriter
from endofm.utils.io import atomic_write_text
from endofm.utils.progress import progress

_PARTS = {"videos": 0, "polypdiag": 1, "cvc": 2, "kumc": 3}
# A fast H.264 preset that keeps B-frames (as real recordings have): ~3x faster than "medium".
ENCODER_OPTIONS = {"preset": "veryfast"} if "libx264" in av.codecs_available else {}
PRETRAIN_SOURCES = ("colonoscopic", "ldpolyp")


@dataclass(frozen=True)
class SynthScale:
    """Sizes of the sample data: ``small`` (the tests' ``sample_data``), ``demo`` (larger),
    ``tiny`` (one or two items per part, for quick checks of the writers) and ``bench``
    (``small`` with 48 + 48 PolypDiag videos: enough test videos for an F1 that does not move
    in steps of 0.1, for benchmarks/classification_renders.py)."""

    pretrain_videos_per_source: int = 2
    pretrain_seconds: float = 8.0
    pretrain_size: int = 128
    polypdiag_train: int = 16
    polypdiag_val: int = 8
    polypdiag_frames: int = 64
    polypdiag_size: int = 112
    cvc_train: int = 6
    cvc_test: int = 3
    cvc_frames: tuple[int, int] = (12, 18)
    cvc_size: tuple[int, int] = (96, 128)
    kumc_videos: tuple[int, int, int] = (6, 2, 3)
    kumc_frames: int = 12
    kumc_size: int = 128
    fps: float = 30.0


SCALES = {
    "small": SynthScale(),
    "demo": SynthScale(pretrain_videos_per_source=4, pretrain_seconds=10.0, polypdiag_train=32,
                       polypdiag_val=16, polypdiag_frames=96, polypdiag_size=128, cvc_train=10,
                       cvc_test=4, cvc_frames=(16, 24), kumc_videos=(10, 3, 4), kumc_frames=16),
    "bench": SynthScale(polypdiag_train=48, polypdiag_val=48),
    "tiny": SynthScale(pretrain_videos_per_source=1, pretrain_seconds=0.5, pretrain_size=64,
                       polypdiag_train=2, polypdiag_val=2, polypdiag_frames=8, polypdiag_size=64,
                       cvc_train=1, cvc_test=1, cvc_frames=(4, 4), cvc_size=(48, 64),
                       kumc_videos=(1, 1, 1), kumc_frames=4, kumc_size=64),
}


def _rng(seed: int, part: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _PARTS[part], index]))


def _write_clip(path: Path, labels: list[int], num_frames: int, size: int, fps: float,
                rng: np.random.Generator, style: Style) -> None:
    """Render and encode one video of ``num_frames`` square frames with polyps ``labels``."""
    scene = random_scene(rng, labels, size, style)
    camera = random_camera(rng, num_frames, size)
    with VideoWriter(path, fps, size, size, options=ENCODER_OPTIONS) as writer:
        for i in range(num_frames):
            writer.write(render_frame(scene, camera, i, size, size)[0])


def synth_pretrain_videos(out: Path, seed: int, scale: SynthScale,
          style: Style = DEFAULT_STYLE) -> Path:
    """``out/videos/<source>/<source>_<k>.mp4``; about half the videos show a polyp."""
    root = out / "videos"
    num_frames = int(round(scale.pretrain_seconds * scale.fps))
    for s, source in enumerate(PRETRAIN_SOURCES):
        for k in range(scale.pretrain_videos_per_source):
            index = s * scale.pretrain_videos_per_source + k
            rng = _rng(seed, "videos", index)
            labels = [int(rng.choice([ADENOMATOUS, HYPERPLASTIC]))] if index % 2 else []
            _write_clip(root / source / f"{source}_{k:02d}.mp4", labels, num_frames,
                        scale.pretrain_size, scale.fps, rng, style)
    return root


def synth_polypdiag(out: Path, seed: int, scale: SynthScale,
          style: Style = DEFAULT_STYLE) -> Path:
    """``out/polypdiag``: balanced normal/abnormal videos and comma-separated split files."""
    root = out / "polypdiag"
    counts = {"train": scale.polypdiag_train, "val": scale.polypdiag_val}
    index = 0
    for split, count in counts.items():
        lines = []
        for k in range(count):
            rng = _rng(seed, "polypdiag", index)
            label = k % 2
            polyps = [int(rng.choice([ADENOMATOUS, HYPERPLASTIC])) for _ in
                      range(int(rng.integers(1, 3)))] if label else []
            name = f"{split}_{k:03d}.mp4"
            _write_clip(root / "videos" / name, polyps, scale.polypdiag_frames,
                        scale.polypdiag_size, scale.fps, rng, style)
            lines.append(f"{name},{label}\n")
            index += 1
        (root / "splits").mkdir(parents=True, exist_ok=True)
        atomic_write_text("".join(lines), root / "splits" / f"{split}.txt")
    return root


def synth_cvc(out: Path, seed: int, scale: SynthScale,
          style: Style = DEFAULT_STYLE) -> Path:
    """``out/cvc``: consecutive 1-based tif frames/masks; the first ``cvc_train`` sequences
    are listed in ``train.txt``, the rest in ``test.txt``."""
    root = out / "cvc"
    original, truth = root / "CVC-ClinicDB" / "Original", root / "CVC-ClinicDB" / "Ground Truth"
    original.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    height, width = scale.cvc_size
    first, ranges = 1, []
    for index in range(scale.cvc_train + scale.cvc_test):
        rng = _rng(seed, "cvc", index)
        length = int(rng.integers(scale.cvc_frames[0], scale.cvc_frames[1] + 1))
        short = min(height, width)
        scene = random_scene(rng, [int(rng.choice([ADENOMATOUS, HYPERPLASTIC]))], short, style)
        camera = random_camera(rng, length, short)
        for i in range(length):
            frame, masks, _ = render_frame(scene, camera, i, height, width)
            mask = np.any(masks, axis=0) if masks else np.zeros((height, width), dtype=bool)
            Image.fromarray(frame).save(original / f"{first + i}.tif")
            Image.fromarray(mask.astype(np.uint8) * 255).save(truth / f"{first + i}.tif")
        ranges.append(f"{first} {length}\n")
        first += length
    atomic_write_text("".join(ranges[:scale.cvc_train]), root / "train.txt")
    atomic_write_text("".join(ranges[scale.cvc_train:]), root / "test.txt")
    return root


def voc_xml(filename: str, height: int, width: int,
            objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    """A Pascal-VOC annotation with ``<size>`` and one ``<object>`` per (name, xyxy box)."""
    ann = ElementTree.Element("annotation")
    ElementTree.SubElement(ann, "filename").text = filename
    size = ElementTree.SubElement(ann, "size")
    for tag, value in (("width", width), ("height", height), ("depth", 3)):
        ElementTree.SubElement(size, tag).text = str(value)
    for name, box in objects:
        obj = ElementTree.SubElement(ann, "object")
        ElementTree.SubElement(obj, "name").text = name
        ElementTree.SubElement(obj, "difficult").text = "0"
        bndbox = ElementTree.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ElementTree.SubElement(bndbox, tag).text = str(value)
    return ElementTree.tostring(ann, encoding="unicode") + "\n"


def _synth_kumc_video(split_dir: Path, name: str, label: int, rng: np.random.Generator,
                      scale: SynthScale, style: Style) -> None:
    """One KUMC video with one polyp of class ``label``; the first 0–2 frames show none."""
    size, length = scale.kumc_size, scale.kumc_frames
    scene = random_scene(rng, [label], size, style)
    camera = random_camera(rng, length, size)
    negatives = int(rng.integers(0, 3))
    images, annotations = split_dir / "Image" / name, split_dir / "Annotation" / name
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for i in range(length):
        frame, masks, labels = render_frame(scene, camera, i, size, size,
                                            show_polyps=i >= negatives)
        Image.fromarray(frame).save(images / f"{i + 1}.jpg", quality=92)
        objects = [(CLASS_NAMES[lab], mask_box(m)) for m, lab in zip(masks, labels, strict=True)]
        atomic_write_text(voc_xml(f"{i + 1}.jpg", size, size, objects),
                          annotations / f"{i + 1}.xml")


def synth_kumc(out: Path, seed: int, scale: SynthScale,
          style: Style = DEFAULT_STYLE) -> Path:
    """``out/kumc/{train,val,test}2019``; video names are numbers unique across splits and
    the classes alternate (adenomatous first) within each split."""
    root = out / "kumc"
    index = 0
    for split, count in zip(("train", "val", "test"), scale.kumc_videos, strict=True):
        for k in range(count):
            label = ADENOMATOUS if k % 2 == 0 else HYPERPLASTIC
            _synth_kumc_video(root / f"{split}2019", str(index + 1), label,
                              _rng(seed, "kumc", index), scale, style)
            index += 1
    return root


def sample_polypdiag(out_dir: str | Path, seed: int = 0) -> Path:
    """The tests' small PolypDiag-layout dataset under ``out_dir`` (classification)."""
    return synth_polypdiag(Path(out_dir), seed, SCALES["small"])


def sample_cvc(out_dir: str | Path, seed: int = 0) -> Path:
    """The tests' small CVC-12k-layout dataset under ``out_dir`` (segmentation)."""
    return synth_cvc(Path(out_dir), seed, SCALES["small"])


def sample_kumc(out_dir: str | Path, seed: int = 0) -> Path:
    """The tests' small KUMC-layout dataset under ``out_dir`` (detection)."""
    return synth_kumc(Path(out_dir), seed, SCALES["small"])


def synthesize(out_dir: str | Path, seed: int = 0, scale: str = "small",
               style: str = "white_light") -> dict[str, Path]:
    """Write the sample data under ``out_dir``; returns ``{"root", "videos", "polypdiag",
    "cvc", "kumc"}`` paths. ``scale``: ``"small"`` (the tests' data, a few seconds), ``"demo"``,
    ``"bench"`` or ``"tiny"`` (see :class:`SynthScale`); ``style``: a name in
    :data:`endofm.data.synth_render.STYLES` (``white_light``, ``nbi``)."""
    look = get_style(style)
    if seed < 0:
        raise ValueError(f"seed must be >= 0 (a NumPy seed), got {seed}")
    if scale not in SCALES:
        raise ValueError(f"unknown synth scale {scale!r}; choose one of {sorted(SCALES)}")
    sizes = SCALES[scale]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = {"videos": synth_pretrain_videos, "polypdiag": synth_polypdiag, "cvc": synth_cvc,
             "kumc": synth_kumc}
    paths = {"root": out}
    with progress(total=len(parts), desc="synth", unit="part") as bar:
        for name, make in parts.items():
            bar.set_postfix(part=name)
            paths[name] = make(out, seed, sizes, look)
            bar.update()
    return paths
