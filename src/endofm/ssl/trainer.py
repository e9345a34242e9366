"""``endofm pretrain``: the Endo-FM self-supervised training loop.

One process per device (``torchrun`` for several). Checkpoints keep the released layout
(``teacher``/``student`` with ``backbone.``/``head.`` keys) plus the full resume state, are
written atomically every ``train.save_every_steps`` steps and at the end of every
``train.save_every_epochs``-th epoch and of the last (the last ``train.keep_last`` kept), and a run
restarted on the same output folder continues exactly where the newest checkpoint left it
(mid-epoch included).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from endofm.config import to_dict
from endofm.data import PretrainClipDataset, PretrainViews, resolve_items
from endofm.data.pretrain_dataset import Skip
from endofm.models import backbone_config, create_backbone, load_checkpoint, save_pretrained
from endofm.ssl.data import collate, epoch_order, merge_skips
from endofm.ssl.diagnostics import CollapseMonitor, plot_pretrain_curves
from endofm.ssl.head import DINOHead
from endofm.ssl.meta_arch import Encoder, SSLMetaArch
from endofm.ssl.monitor import knn_probe
from endofm.ssl.objective import SSLObjective
from endofm.train import (
    RESUME_HINT,
    CosineScheduler,
    OptimizerStepper,
    build_optimizer,
    finish_logs,
    load_training_state,
    newest_readable,
    param_groups,
    prune_checkpoints,
    save_training_state,
    step_checkpoints,
)
from endofm.train.run_record import describe_init, run_inputs, run_origin, start_run
from endofm.train.settings import scaled_lr
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
from endofm.utils.progress import progress
from endofm.utils.seed import seed_everything

logger = logging.getLogger(__name__)


def build_encoder(cfg: Any) -> Encoder:
    """Backbone (optionally initialised from ``model.backbone.pretrained``) + DINO head; head
    weights are taken from the checkpoint too when it has a head of the same shapes. With the iBOT
    term on, the backbone gets a mask token and, with ``loss.ibot_separate_head``, a patch head
    of the same shape as the DINO head."""
    m, ibot = cfg.model.backbone, cfg.loss.ibot_weight > 0
    backbone = create_backbone(m, use_mask_token=ibot)  # refuses a global size it cannot tile
    if cfg.views.local_size % backbone.patch_size:
        raise ValueError(f"views.local_size={cfg.views.local_size} is not a multiple of the "
                         f"backbone's patch size {backbone.patch_size}")
    h = cfg.head

    def new_head() -> DINOHead:
        return DINOHead(backbone.embed_dim, h.out_dim, h.hidden_dim, h.bottleneck_dim,
                        h.num_layers, h.norm_last_layer)

    head = new_head()
    if m.pretrained is not None:
        saved = load_checkpoint(m.pretrained).head_state_dict
        own = head.state_dict()
        if saved and all(k in saved and saved[k].shape == v.shape for k, v in own.items()):
            head.load_state_dict({k: saved[k] for k in own})
    patch_head = new_head() if ibot and cfg.loss.ibot_separate_head else None
    return Encoder(backbone, head, patch_head)


class PretrainTrainer:
    def __init__(self, cfg: Any, data: str | Path, output: str | Path, dist: DistInfo,
                 restart: bool = False) -> None:
        self.cfg, self.dist, self.output = cfg, dist, Path(output)
        self.inputs, self.restart = run_inputs(data, cfg.model.backbone.pretrained), restart
        self.device = dist.device
        seed_everything(cfg.train.seed)  # identical initial weights on every process
        self.skipped: list[dict[str, str]] = []
        items = resolve_items(data, self.skipped)
        self.dataset = PretrainClipDataset(items, PretrainViews(cfg.views),
                                           on_error=cfg.data.on_error,
                                           folder_fps=cfg.data.folder_fps,
                                           keep_decoded=cfg.data.keep_decoded)
        if cfg.data.keep_decoded and dist.is_main:
            logger.info("kept %d videos decoded in memory (%.1f MiB)", len(self.dataset),
                        self.dataset.decoded_bytes / 2**20)
        self.skipped += self.dataset.skipped
        self.weights = (self.dataset.sample_weights(dict(cfg.data.source_weights))
                        if cfg.data.source_weights else None)
        self.meta = SSLMetaArch(build_encoder(cfg), SSLObjective(cfg.head.out_dim, cfg.loss),
                                teacher=cfg.ssl.teacher).to(self.device)
        if cfg.model.backbone.pretrained and dist.is_main:
            logger.info(describe_init(self.meta.student, cfg.model.backbone.pretrained))
        seed_everything(cfg.train.seed + dist.rank)  # different augmentations per process
        self.student = self.meta.student
        if cfg.model.compile:
            # one graph per view shape: traced with symbolic shapes, the second shape failed to
            # compile on a CPU ("cannot determine truth value of Relational")
            self.student.compile(dynamic=False)
        # one forward per step through DDP: the whole step (the teacher takes no gradients, and
        # the loss centres are all-reduced, so its buffers need no broadcast)
        self.ddp_meta = (DistributedDataParallel(self.meta, broadcast_buffers=False)
                         if dist.world_size > 1 else self.meta)
        o = cfg.optim
        groups = param_groups(self.student, o.weight_decay, decay_embeddings=o.decay_embeddings)
        self.stepper = OptimizerStepper(build_optimizer("adamw", groups, o.lr),
                                        make_grad_scaler(self.device, cfg.train.precision),
                                        o.clip_grad, o.clip_mode)
        self.iters_per_epoch = math.ceil(len(self.dataset) / dist.world_size
                                         / cfg.train.batch_size)
        self._build_schedules()
        self.epoch, self.iteration, self.step = 0, 0, 0
        self.logger = MetricLogger(self.output)
        self.collapse = CollapseMonitor(self.meta.teacher.backbone, cfg.head.out_dim, cfg.collapse)

    def _build_schedules(self) -> None:
        o, n = self.cfg.optim, self.iters_per_epoch
        total = self.cfg.train.epochs * n
        global_batch = self.cfg.train.batch_size * self.dist.world_size
        self.lr = CosineScheduler(scaled_lr(o.lr, global_batch, o.scale_lr_with_batch),
                                  o.min_lr, total, round(o.warmup_epochs * n))
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
            "dino_loss": {"center": self.meta.objective.dino.center.detach().cpu()},
            "ibot_loss": ({"center": self.meta.objective.ibot.center.detach().cpu()}
                          if self.meta.objective.ibot is not None else {}),
            "epoch": self.epoch, "iteration": self.iteration, "step": self.step,
            "config": to_dict(self.cfg), "arch": backbone_config(self.student.backbone),
            "skipped": list(self.skipped),
        }

    def save(self) -> None:
        if not self.dist.is_main:
            return
        save_training_state(self.state(), self.output / f"checkpoint-{self.step:07d}.pth")
        prune_checkpoints(self.output, self.cfg.train.keep_last)

    def resume(self) -> Path | None:
        found = step_checkpoints(self.output)
        if not found:
            return None
        path, state = newest_readable(found)
        state = load_training_state(path, {"teacher": self.meta.teacher,
                                           "student": self.student}, RESUME_HINT, state)
        self.stepper.load_state_dict(state)
        objective = self.meta.objective
        objective.dino.center.copy_(state["dino_loss"]["center"])
        if objective.ibot is not None:
            objective.ibot.center.copy_(state["ibot_loss"]["center"])
        self.epoch, self.iteration, self.step = state["epoch"], state["iteration"], state["step"]
        self.skipped = [s for s in state["skipped"] if s not in self.skipped] + self.skipped
        return path

    # -- training ---------------------------------------------------------------------------
    def loader(self) -> DataLoader:
        """The rest of the current epoch (from ``self.iteration``), in the epoch's fixed order."""
        cfg = self.cfg
        order = epoch_order(len(self.dataset), self.epoch, cfg.train.seed, self.dist.rank,
                            self.dist.world_size, self.weights)
        order = order[self.iteration * cfg.train.batch_size:]
        # its own generator: creating the loader mid-epoch must not consume the global RNG
        gen = torch.Generator().manual_seed(cfg.train.seed * 100_003 + self.epoch)
        return DataLoader(self.dataset, batch_size=cfg.train.batch_size, sampler=order,
                          num_workers=cfg.train.num_workers, collate_fn=collate, generator=gen)

    def mask_generator(self) -> torch.Generator:
        """The generator of this step's block masks, seeded by run seed, step and rank (a
        resumed run redraws the same masks)."""
        return torch.Generator().manual_seed(
            (self.cfg.train.seed * 1_000_003 + self.step) * 1009 + self.dist.rank)

    def train_step(self, views: list[torch.Tensor]) -> dict[str, float]:
        """One optimiser step on a batch of views; returns the values to log."""
        cfg, it = self.cfg, self.step
        self.stepper.set_schedules(self.lr[it], self.wd[it])
        views = [v.to(self.device, non_blocking=True) for v in views]
        with autocast(self.device, cfg.train.precision), self.collapse.watch():
            step = self.ddp_meta(views, self.teacher_temp[it], self.mask_generator())
        self.collapse.observe(step.teacher, step.teacher_center, step.teacher_cls)
        loss = step.loss.total
        if not torch.isfinite(loss):
            raise RuntimeError(f"non-finite loss at step {self.step}: {loss.item()}")
        self.stepper.backward(loss)
        if self.epoch < cfg.optim.freeze_last_layer:  # before clipping: frozen grads don't count
            self.drop_last_layer_grads()
        self.stepper.clip(self.student.parameters())
        self.stepper.apply()
        self.meta.update_teacher(self.momentum[it])
        return step.loss.values() | {"lr": self.lr[it], "teacher_momentum": self.momentum[it]
                                     } | self.collapse.stats(step.loss.logs)

    def drop_last_layer_grads(self) -> None:
        """Freeze the heads' last layers for this step (the release's ``freeze_last_layer``)."""
        for name, p in self.student.named_parameters():
            if ".last_layer." in name:
                p.grad = None

    def train_epoch(self) -> None:
        cfg = self.cfg
        self.meta.train()
        bar = progress(self.loader(), desc=f"epoch {self.epoch + 1}/{cfg.train.epochs}",
                       initial=self.iteration, total=self.iters_per_epoch, unit="step",
                       enabled=self.dist.is_main and cfg.train.progress)
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
                if self.step % cfg.train.log_every == 0:
                    self.logger.log(logs | {"epoch": self.epoch, "clips_per_s": rate}, self.step)
                    self.warn(self.collapse.check(logs, self.step))
            self.iteration += 1
            self.step += 1
            if cfg.train.save_every_steps and self.step % cfg.train.save_every_steps == 0:
                self.save()
        self.epoch, self.iteration = self.epoch + 1, 0

    def epoch_checkpoint_due(self) -> bool:
        """Whether the epoch just finished ends with a checkpoint: every
        ``train.save_every_epochs``-th epoch, and the last."""
        return (self.epoch % self.cfg.train.save_every_epochs == 0
                or self.epoch >= self.cfg.train.epochs)

    def warn(self, message: str | None) -> None:
        if message and self.dist.is_main:
            logger.warning(message)

    def record_skips(self, skips: list[Skip]) -> None:
        for s in skips:
            entry = {"path": s.path, "reason": s.reason}
            if entry not in self.skipped:
                self.skipped.append(entry)
                if self.dist.is_main:
                    logger.warning("skipped %s: %s", s.path, s.reason)

    def monitor(self) -> None:
        mon = self.cfg.monitor
        if mon.data is None or not self.dist.is_main or self.epoch % mon.every_epochs:
            return
        views = self.cfg.views
        metrics = knn_probe(self.meta.teacher.backbone, mon.data, views.global_size,
                            mon.num_frames, mon.frame_step, mon.k, self.device,
                            self.cfg.train.precision)
        self.logger.log(metrics | {"epoch": self.epoch}, self.step)
        logger.info("epoch %d: %s", self.epoch,
                    ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

    def run(self) -> dict[str, Any]:
        if self.dist.is_main:
            start_run(self.cfg, self.output, self.inputs, self.restart,
                      state_files=["checkpoint-*.pth"], origin=run_origin("pretrain"))
        barrier()
        resumed = self.resume()
        self.logger.rewind(self.step)  # rows logged before the checkpoint's step stay
        if self.dist.is_main:
            if resumed is not None:
                logger.info("resumed from %s (epoch %d, step %d)", resumed, self.epoch + 1,
                            self.step)
            if self.skipped:
                logger.warning("%d file(s) skipped; see %s", len(self.skipped),
                               self.output / "skipped.json")
        while self.epoch < self.cfg.train.epochs:
            self.train_epoch()
            if self.epoch_checkpoint_due():
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
                logger.warning("skipped %s: %s", s["path"], s["reason"])
        return report


def pretrain(cfg: Any, data: str | Path, output: str | Path, restart: bool = False
             ) -> dict[str, Any]:
    """Run (or resume) pre-training; returns a report (rank 0). An ``output`` holding a run
    with other settings is refused unless ``restart``."""
    dist = init_distributed(cfg.train.device)
    try:
        return PretrainTrainer(cfg, data, output, dist, restart).run()
    finally:
        cleanup_distributed()
