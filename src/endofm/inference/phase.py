"""``endofm finetune phase`` end to end: stage 1 window features through the extraction path
(cached in ``RUN/features``, resumable: videos already extracted are skipped), then stage 2,
the temporal model, on the engine.

Run folder: ``RUN/features/`` (one ``.npy`` per video, ``index.csv``, ``run.json``),
``RUN/backbone/`` (the randomly initialised backbone when no ``--pretrained`` is given),
``RUN/window/`` (with ``features.source=finetuned``: the window classifier's own run),
and the engine's files (``config.yaml``, ``last.pth``, ``best/``, ``test/``,
``metrics.json``).
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from endofm.data import VideoError
from endofm.data.phase import PhaseVideo, read_phase_dataset, split_videos
from endofm.inference.encoder import VideoEncoder
from endofm.inference.extract import Extraction, VideoInput
from endofm.models import VisionTransformer, create_backbone, save_pretrained
from endofm.models.hub import is_hub_name
from endofm.tasks.engine import fit, fit_seeds
from endofm.tasks.phase.config import FeatureSource, PhaseConfig
from endofm.tasks.phase.data import load_items
from endofm.tasks.phase.evaluation import evaluate_items
from endofm.tasks.phase.scoring import write_scores
from endofm.tasks.phase.task import (
    PhaseTask,
    load_phase_model,
    saved_backbone,
    saved_phase_config,
)
from endofm.tasks.phase.window import PhaseWindowTask, window_config
from endofm.utils.device import resolve_device
from endofm.utils.progress import is_quiet
from endofm.utils.seed import seed_everything

logger = logging.getLogger(__name__)

FEATURES, BACKBONE, WINDOW = "features", "backbone", "window"


def phase_encoder(cfg: PhaseConfig, backbone: VisionTransformer | str | Path) -> VideoEncoder:
    """The extraction settings of ``features``: one CLS vector per window, ``rate`` windows
    per second."""
    f = cfg.features
    return VideoEncoder(backbone, f.num_frames, f.step(), f.stride(), size=f.size,
                        features="cls", batch_size=f.batch_size, num_workers=f.num_workers,
                        device=cfg.train.device, precision=str(cfg.train.precision))


def extract_features(cfg: PhaseConfig, videos: Sequence[PhaseVideo], out_dir: Path,
                     backbone: VisionTransformer | str | Path, checkpoint: str) -> Path:
    """Window features of ``videos`` into ``out_dir`` (videos done before are skipped; a
    folder made with other settings is refused). A window that cannot be decoded is an error
    naming its video: the temporal model needs every window."""
    inputs = [VideoInput(v.path, f"{v.name}{v.path.suffix}") for v in videos]
    report = Extraction(phase_encoder(cfg, backbone), inputs, out_dir, checkpoint,
                        progress=cfg.train.progress and not is_quiet()).run()
    if report.errors:
        first = report.errors[0]
        raise VideoError(first["path"], f"{first['reason']} ({len(report.errors)} video(s) "
                                        "failed; see run.json)")
    return out_dir


def feature_backbone(cfg: PhaseConfig, root: Path, output: Path,
                     pretrained: str | Path | None, restart: bool
                     ) -> tuple[VisionTransformer | Path, str]:
    """The backbone stage 1 extracts with, and the name recorded for it: the pretrained
    checkpoint (frozen), a seeded random one saved in ``RUN/backbone`` (frozen, nothing
    given), or the window classifier fine-tuned in ``RUN/window`` (``finetuned``)."""
    pretrained = pretrained or cfg.features.backbone.pretrained
    if cfg.features.source == FeatureSource.finetuned:
        window_cfg = window_config(cfg)
        fit(PhaseWindowTask(window_cfg), root, output / WINDOW, pretrained, restart)
        return output / WINDOW / "best", str((output / WINDOW / "best").resolve())
    if pretrained:  # a hub name stays a name (its run.json fingerprints the cached file)
        label = str(pretrained) if is_hub_name(pretrained) else str(Path(pretrained).resolve())
        return Path(pretrained), label
    seed_everything(cfg.train.seed)
    saved = output / BACKBONE
    if not (saved / "model.safetensors").is_file():
        save_pretrained(create_backbone(cfg.features.backbone), saved)
        logger.warning("no --pretrained: features from a randomly initialised backbone (%s)",
                       saved)
    return saved, str(saved.resolve())


def prepare_features(cfg: PhaseConfig, root: str | Path, output: str | Path,
                     pretrained: str | Path | None = None, restart: bool = False
                     ) -> PhaseConfig:
    """Stage 1 for every video of the dataset; returns ``cfg`` with ``features.dir`` and the
    backbone used (``features.backbone.pretrained``) filled in."""
    root, output = Path(root), Path(output)
    if restart:
        for part in (FEATURES, WINDOW):
            shutil.rmtree(output / part, ignore_errors=True)
    d = cfg.data
    dataset = read_phase_dataset(root, d.layout, need_videos=True, phases=tuple(d.phases))
    split = split_videos(dataset.videos, dataset.layout)
    logger.info("phase split: %s", split.rule)
    backbone, label = feature_backbone(cfg, root, output, pretrained, restart)
    wanted = set(split.names("all"))
    extract_features(cfg, [v for v in dataset.videos if v.name in wanted], output / FEATURES,
                     backbone, label)
    staged = copy.deepcopy(cfg)
    staged.features.dir = str((output / FEATURES).resolve())
    staged.features.backbone.pretrained = label
    return staged


def finetune_phase(cfg: PhaseConfig, root: str | Path, output: str | Path,
                   pretrained: str | Path | None = None, restart: bool = False,
                   seeds: int = 1) -> dict[str, Any]:
    """Stage 1 (:func:`prepare_features`), then the temporal model on the engine (``seeds``
    runs into ``RUN/seed_k`` sharing the features when more than one)."""
    staged = prepare_features(cfg, root, output, pretrained, restart)
    if seeds == 1:
        return fit(PhaseTask(staged), root, output, None, restart)
    return fit_seeds(PhaseTask, staged, root, output, None, seeds, restart)


def evaluate_checkpoint(checkpoint: str | Path, root: str | Path, output: str | Path,
                        split: str = "test", relaxed: str | None = None) -> dict[str, Any]:
    """A saved temporal model on ``split``: the videos' features are extracted with the
    backbone it was trained on (its folder's copy, into ``OUTPUT/features``), then scored as
    ``evaluate phase --predictions`` scores files."""
    model, meta = load_phase_model(checkpoint)
    cfg = saved_phase_config(meta)
    output = Path(output)
    dataset = read_phase_dataset(root, meta["layout"] if meta["layout"] else "auto",
                                 phases=tuple(meta["phases"]))
    chosen = split_videos(dataset.videos, dataset.layout)
    videos = [v for v in dataset.videos if v.name in set(chosen.names(split))]
    backbone = saved_backbone(checkpoint, meta)
    extract_features(cfg, videos, output / FEATURES, backbone, str(backbone.resolve()))
    items = load_items(videos, output / FEATURES, cfg.features.rate, bool(meta["tools"]))
    device = resolve_device(cfg.train.device)
    result = evaluate_items(model.to(device), items, device, dataset.phases,
                            tuple(meta["tools"]), relaxed or "official", output)
    result |= {"split": split, "split_rule": chosen.rule, "num_videos": len(videos),
               "checkpoint": str(checkpoint), "data": str(root)}
    write_scores(result, output)
    return result
