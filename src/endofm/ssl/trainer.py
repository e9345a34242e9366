"""``endofm pretrain``: the Endo-FM self-supervised training loop.

One process per device (``torchrun`` for several). Checkpoints keep the released layout
(``teacher``/``student`` with ``backbone.``/``head.`` keys) plus the full resume state, are
written atomically every ``run.save_every_steps`` steps and at each epoch end (the last
``run.keep_last`` kept), and a run restarted on the same output folder continues exactly where
the newest checkpoint left it (mid-epoch included).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from endofm.config import save_run_config, to_dict
from endofm.data import PretrainClipDataset, PretrainViews, resolve_items
from endofm.data.pretrain_dataset import Skip
from endofm.models import create_backbone, load_checkpoint, save_pretrained
from endofm.ssl.data import collate, epoch_order, merge_skips
from endofm.ssl.diagnostics import CollapseMonitor, plot_pretrain_curves
from endofm.ssl.head import DINOHead
from endofm.ssl.loss import STLoss
from endofm.ssl.meta_arch import Encoder, SSLMetaArch
from endofm.ssl.monitor import knn_probe
from endofm.train import (
    CosineScheduler,
    OptimizerStepper,
    build_optimizer,
    finish_logs,
    load_training_state,
    param_groups,
    prune_checkpoints,
    save_training_state,
    step_checkpoints,
)
from endofm.utils.device import autocast, make_grad_scaler
from endofm.utils.distributed import (
    DistInfo,
    all_gather_object,
    barrier,
    cleanup_distributed,
    init_distributed,
)
from endofm.utils.io import atomic_write_json
from endofm.utils.logging import MetricLogger
from endofm.utils.seed import seed_everything


def build_encoder(cfg: Any) -> Encoder:
    """Backbone (optionally initialised from ``model.pretrained``) + DINO head; head weights
    are taken from the checkpoint too when it has a head of the same shapes."""
    m = cfg.model
    backbone = create_backbone(m.name, m.pretrained, m.img_size, m.num_frames, m.drop_path_rate,
                               embed_dim=m.embed_dim, depth=m.depth, num_heads=m.num_heads,
                               grad_checkpointing=m.grad_checkpointing)
    h = cfg.head
    head = DINOHead(backbone.embed_dim, h.out_dim, h.hidden_dim, h.bottleneck_dim, h.num_layers,
                    h.norm_last_layer)
    if m.pretrained is not None:
        saved = load_checkpoint(m.pretrained).head_state_dict
        own = head.state_dict()
        if saved and all(k in saved and saved[k].shape == v.shape for k, v in own.items()):
            head.load_state_dict({k: saved[k] for k in own})
    return Encoder(backbone, head)


class PretrainTrainer:
    def __init__(self, cfg: Any, data: str | Path, output: str | Path, dist: DistInfo) -> None:
        self.cfg, self.dist, self.output = cfg, dist, Path(output)
        self.device = dist.device
        seed_everything(cfg.run.seed)  # identical initial weights on every process
        self.skipped: list[dict[str, str]] = []
        items = resolve_items(data, self.skipped)
        self.dataset = PretrainClipDataset(items, PretrainViews(cfg.views),
                                           on_error=cfg.data.on_error,
                                           folder_fps=cfg.data.folder_fps)
        self.skipped += self.dataset.skipped
        self.weights = (self.dataset.sample_weights(dict(cfg.data.source_weights))
                        if cfg.data.source_weights else None)
        self.meta = SSLMetaArch(build_encoder(cfg)).to(self.device)
        seed_everything(cfg.run.seed + dist.rank)  # different augmentations per process
        self.student = self.meta.student
        if cfg.model.compile:
            self.student.compile()
        self.ddp_student = (DistributedDataParallel(self.student)
                            if dist.world_size > 1 else self.student)
        self.criterion = STLoss(cfg.head.out_dim, cfg.loss.student_temp,
                                cfg.loss.center_momentum, cfg.loss.combine).to(self.device)
        o = cfg.optim
        groups = param_groups(self.student, o.weight_decay, decay_embeddings=o.decay_embeddings)
        self.stepper = OptimizerStepper(build_optimizer("adamw", groups, o.lr),
                                        make_grad_scaler(self.device, cfg.run.precision),
                                        o.clip_grad, o.clip_mode)
        self.iters_per_epoch = math.ceil(len(self.dataset) / dist.world_size
                                         / cfg.optim.batch_size)
        self._build_schedules()
        self.epoch, self.iteration, self.step = 0, 0, 0
        self.logger = MetricLogger(self.output)
        self.collapse = CollapseMonitor(self.meta.teacher.backbone, cfg.head.out_dim, cfg.collapse)

    def _build_schedules(self) -> None:
        o, n = self.cfg.optim, self.iters_per_epoch
        total = o.epochs * n
        scale = o.batch_size * self.dist.world_size / 256
        self.lr = CosineScheduler(o.lr * scale, o.min_lr, total, round(o.warmup_epochs * n))
        self.wd = CosineScheduler(o.weight_decay, o.weight_decay_end, total)
        self.momentum = CosineScheduler(o.momentum_teacher, 1.0, total)
        loss = self.cfg.loss
        self.teacher_temp = CosineScheduler(loss.teacher_temp, loss.teacher_temp, total,
                                            loss.warmup_teacher_temp_epochs * n,
                                            loss.warmup_teacher_temp)

    # -- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "teacher": self.meta.teacher.state_dict(),
            "student": self.student.state_dict(),
            **self.stepper.state_dict(),
            "dino_loss": {"center": self.criterion.center.detach().cpu()},
            "epoch": self.epoch, "iteration": self.iteration, "step": self.step,
            "config": to_dict(self.cfg), "skipped": list(self.skipped),
        }

    def save(self) -> None:
        if not self.dist.is_main:
            return
        save_training_state(self.state(), self.output / f"checkpoint-{self.step:07d}.pth")
        prune_checkpoints(self.output, self.cfg.run.keep_last)

    def resume(self) -> Path | None:
        found = step_checkpoints(self.output)
        if not found:
            return None
        state = load_training_state(found[-1])
        self.meta.teacher.load_state_dict(state["teacher"])
        self.student.load_state_dict(state["student"])
        self.stepper.load_state_dict(state)
        self.criterion.center.copy_(state["dino_loss"]["center"])
        self.epoch, self.iteration, self.step = state["epoch"], state["iteration"], state["step"]
        self.skipped = [s for s in state["skipped"] if s not in self.skipped] + self.skipped
        return found[-1]

    # -- training ---------------------------------------------------------------------------
    def loader(self) -> DataLoader:
        """The rest of the current epoch (from ``self.iteration``), in the epoch's fixed order."""
        cfg = self.cfg
        order = epoch_order(len(self.dataset), self.epoch, cfg.run.seed, self.dist.rank,
                            self.dist.world_size, self.weights)
        order = order[self.iteration * cfg.optim.batch_size:]
        # its own generator: creating the loader mid-epoch must not consume the global RNG
        gen = torch.Generator().manual_seed(cfg.run.seed * 100_003 + self.epoch)
        return DataLoader(self.dataset, batch_size=cfg.optim.batch_size, sampler=order,
                          num_workers=cfg.data.num_workers, collate_fn=collate, generator=gen)

    def train_step(self, views: list[torch.Tensor]) -> dict[str, float]:
        cfg, it = self.cfg, self.step
        self.stepper.set_schedules(self.lr[it], self.wd[it])
        views = [v.to(self.device, non_blocking=True) for v in views]
        with autocast(self.device, cfg.run.precision), self.collapse.watch():
            student, teacher = self.meta(views, self.ddp_student)
        self.collapse.observe(teacher, self.criterion.center)
        terms = self.criterion(student, teacher, self.teacher_temp[it])
        if not torch.isfinite(terms["loss"]):
            raise RuntimeError(f"non-finite loss at step {self.step}: {terms['loss'].item()}")
        self.stepper.backward(terms["loss"])
        self.stepper.clip(self.student.parameters())
        if self.epoch < cfg.optim.freeze_last_layer:
            for p in self.student.head.last_layer.parameters():
                p.grad = None
        self.stepper.apply()
        self.meta.update_teacher(self.momentum[it])
        return {k: v.item() for k, v in terms.items()} | {
            "lr": self.lr[it], "teacher_momentum": self.momentum[it]} | self.collapse.stats(terms)

    def train_epoch(self) -> None:
        cfg = self.cfg
        self.meta.train()
        bar = tqdm(self.loader(), desc=f"epoch {self.epoch + 1}/{cfg.optim.epochs}",
                   initial=self.iteration, total=self.iters_per_epoch,
                   disable=not (self.dist.is_main and cfg.run.progress))
        tic, clips = time.perf_counter(), 0
        for views, skips in bar:
            self.record_skips(skips)
            if views is not None:
                logs = self.train_step(views)
                clips += views[0].shape[0] * self.dist.world_size
                rate = clips / max(time.perf_counter() - tic, 1e-9)
                bar.set_postfix(loss=f"{logs['loss']:.3f}", l_cv=f"{logs['l_cv']:.3f}",
                                l_dm=f"{logs['l_dm']:.3f}", lr=f"{logs['lr']:.1e}",
                                clips_s=f"{rate:.2f}")
                if self.step % cfg.run.log_every == 0:
                    self.logger.log(logs | {"epoch": self.epoch, "clips_per_s": rate}, self.step)
                    self.warn(self.collapse.check(logs, self.step))
            self.iteration += 1
            self.step += 1
            if cfg.run.save_every_steps and self.step % cfg.run.save_every_steps == 0:
                self.save()
        self.epoch, self.iteration = self.epoch + 1, 0

    def warn(self, message: str | None) -> None:
        if message and self.dist.is_main:
            tqdm.write(f"WARNING: {message}")

    def record_skips(self, skips: list[Skip]) -> None:
        for s in skips:
            entry = {"path": s.path, "reason": s.reason}
            if entry not in self.skipped:
                self.skipped.append(entry)
                if self.dist.is_main:
                    tqdm.write(f"skipped {s.path}: {s.reason}")

    def monitor(self) -> None:
        mon = self.cfg.monitor
        if mon.data is None or not self.dist.is_main or self.epoch % mon.every_epochs:
            return
        views = self.cfg.views
        metrics = knn_probe(self.meta.teacher.backbone, mon.data, views.global_size,
                            mon.num_frames, mon.sampling_rate, mon.k, self.device,
                            self.cfg.run.precision)
        self.logger.log(metrics | {"epoch": self.epoch}, self.step)
        tqdm.write(f"epoch {self.epoch}: " + ", ".join(f"{k} {v:.3f}"
                                                       for k, v in metrics.items()))

    def run(self) -> dict[str, Any]:
        resumed = self.resume()
        if self.dist.is_main:
            save_run_config(self.cfg, self.output)
            if resumed is not None:
                print(f"resumed from {resumed} (epoch {self.epoch + 1}, step {self.step})")
            if self.skipped:
                print(f"{len(self.skipped)} file(s) skipped; see {self.output / 'skipped.json'}")
        while self.epoch < self.cfg.optim.epochs:
            self.train_epoch()
            self.save()
            self.monitor()
            barrier()
        return self.finish()

    def finish(self) -> dict[str, Any]:
        """Every rank's skips gathered; on the main process: skipped.json, the teacher
        backbone, the loss curves."""
        self.skipped = merge_skips(all_gather_object(self.skipped))
        report = {"epochs": self.epoch, "steps": self.step, "num_clips": len(self.dataset),
                  "num_skipped": len(self.skipped), "skipped": self.skipped}
        if self.dist.is_main:
            atomic_write_json(self.skipped, self.output / "skipped.json")
            save_pretrained(self.meta.teacher.backbone, self.output / "backbone")
            rows = finish_logs(self.logger, self.output / "loss_curves.png",
                               plot_pretrain_curves)
            if rows:
                steps = [r for r in rows if "loss" in r][-3:]
                report["final_loss"] = float(np.mean([r["loss"] for r in steps]))
                report["final_entropy_ratio"] = float(np.mean([r["entropy_ratio"]
                                                               for r in steps]))
            report["collapse_warning"] = self.collapse.warned
            for s in self.skipped:
                print(f"skipped {s['path']}: {s['reason']}")
        return report


def pretrain(cfg: Any, data: str | Path, output: str | Path) -> dict[str, Any]:
    """Run (or resume) pre-training; returns a report (rank 0)."""
    dist = init_distributed(cfg.run.device)
    try:
        return PretrainTrainer(cfg, data, output, dist).run()
    finally:
        cleanup_distributed()
