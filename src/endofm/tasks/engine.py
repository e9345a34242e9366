"""One fine-tuning / evaluation loop for every downstream task.

``fit`` trains a :class:`~endofm.tasks.base.Task` with the selection protocol of its config,
checkpoints ``last`` (full training state, every epoch, atomically) and ``best`` (the task's model
format), resumes exactly from ``last`` when the output folder has one, and evaluates the test
split once with the kept weights. ``evaluate`` runs a saved model on a split. Distributed runs
(``torchrun``) shard the training data; evaluation runs on rank 0.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from endofm.config import to_dict
from endofm.data.formats.splits import carve_items
from endofm.models.registry import backbone_config
from endofm.models.vision_transformer import VisionTransformer
from endofm.tasks.base import Task
from endofm.train import (
    RESUME_HINT,
    CosineScheduler,
    OptimizerStepper,
    build_optimizer,
    finish_logs,
    load_training_state,
    param_groups,
    save_training_state,
    to_device,
)
from endofm.train.run_record import (
    RUN_RECORD_NAME,
    describe_init,
    run_inputs,
    run_origin,
    start_run,
)
from endofm.train.settings import scaled_lr
from endofm.utils.device import autocast, make_grad_scaler
from endofm.utils.distributed import DistInfo, barrier, init_distributed
from endofm.utils.io import atomic_write_json, atomic_write_text
from endofm.utils.logging import MetricLogger, plot_curves
from endofm.utils.progress import progress
from endofm.utils.seed import seed_everything

logger = logging.getLogger(__name__)

LAST = "last.pth"


def carve_validation(items: Sequence, fraction: float, seed: int,
                     labels: Sequence[int] | None = None,
                     groups: Sequence[str] | None = None) -> tuple[list, list]:
    """Split ``items`` into (train, val) by item with a seeded shuffle; val gets at least one
    item and train keeps at least one. With ``labels`` (one per item) the carve-out is
    stratified: each class gives val its share of ``fraction`` (rounded), in seeded order.
    With ``groups`` (one video key per item) whole videos are carved
    (:func:`endofm.data.formats.splits.carve_items`)."""
    if groups is not None:
        index = list(range(len(items)))
        kept, carved = carve_items(index, fraction, seed, lambda i: groups[i],
                                   None if labels is None else (lambda i: labels[i]))
        return [items[i] for i in kept], [items[i] for i in carved]
    if len(items) < 2:
        raise ValueError(f"cannot carve a validation split from {len(items)} training item(s); "
                         "use protocol.selection=fixed")
    order = list(range(len(items)))
    rng = random.Random(seed)
    rng.shuffle(order)
    if labels is not None:
        # within each class, the k-th of n items (shuffled) gets rank k / n; val takes the
        # lowest ranks, so every class is represented in proportion
        rank: dict[int, float] = {}
        for label in sorted(set(labels)):
            members = [i for i in order if labels[i] == label]
            rank |= {i: k / len(members) for k, i in enumerate(members)}
        order = sorted(order, key=lambda i: rank[i])  # stable: ties keep the shuffled order
    n_val = min(len(items) - 1, max(1, round(fraction * len(items))))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return [items[i] for i in train], [items[i] for i in val]


def split_items(task: Task, root: str | Path) -> tuple[list, list | None, list]:
    """(train, selection, test) items under the config's protocol."""
    protocol = task.cfg.protocol
    task.bind_data(root)
    train = task.read_items(root, "train")
    test = task.read_items(root, task.test_split)
    if protocol.selection == "val":
        given = task.given_split(root, "val")
        if given:
            return train, given, test
        train, val = carve_validation(train, protocol.val_fraction, protocol.val_seed,
                                      task.stratify_labels(train), task.item_groups(train))
        return train, val, test
    if protocol.selection == "fixed":
        return train, None, test
    if protocol.selection == "test":
        warnings.warn("protocol.selection=test keeps the epoch with the best TEST score, as the "
                      "release did: the reported test metrics are optimistic", stacklevel=2)
        return train, test, test
    raise ValueError(f"protocol.selection must be val, fixed or test, got "
                     f"{protocol.selection!r}")


def lr_schedule(base_lr: float, min_lr: float, epochs: int, steps_per_epoch: int,
                warmup_epochs: float) -> CosineScheduler:
    """Per optimiser step: a linear warm-up from ``base_lr / warmup`` to ``base_lr`` (no step is
    taken at lr 0), then a cosine to ``min_lr``."""
    warmup = round(warmup_epochs * steps_per_epoch)
    return CosineScheduler(base_lr, min_lr, epochs * steps_per_epoch, warmup,
                           base_lr / warmup if warmup else 0.0)


def run_evaluation(task: Task, model: nn.Module, items: Sequence, device: torch.device,
                   out_dir: Path | None = None) -> dict[str, Any]:
    """``task.evaluate`` with the model in eval mode (its mode restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return task.evaluate(model, items, device, task.cfg.train.precision, out_dir)
    finally:
        model.train(was_training)


def configured_pretrained(cfg: Any) -> str | None:
    """``model.backbone.pretrained`` of a task config (``None`` where it has none)."""
    backbone = getattr(getattr(cfg, "model", None), "backbone", None)
    return getattr(backbone, "pretrained", None)


RANDOM_INIT = "random"  # metrics.json's backbone_init of a run without pretrained weights


class Trainer:
    """The state of one fine-tuning run; ``run()`` trains, selects and tests."""

    def __init__(self, task: Task, root: str | Path, output: str | Path,
                 pretrained: str | Path | None, dist: DistInfo, restart: bool = False) -> None:
        cfg = task.cfg
        self.task, self.cfg, self.dist = task, cfg, dist
        self.output = Path(output)
        pretrained = pretrained or configured_pretrained(cfg)
        self.inputs, self.restart = run_inputs(root, pretrained), restart
        self.device = dist.device
        seed_everything(cfg.train.seed + dist.rank)
        self.train_items, self.val_items, self.test_items = split_items(task, root)
        model = task.build_model(pretrained)
        self.backbone_init = str(pretrained) if pretrained else RANDOM_INIT
        if dist.is_main and pretrained:
            logger.info(describe_init(model, pretrained))
        elif dist.is_main:
            logger.warning("no pretrained weights (--pretrained or model.backbone.pretrained): "
                           "the backbone starts from random weights")
        if cfg.train.freeze_backbone:
            for p in model.backbone.parameters():
                p.requires_grad_(False)
        self.model = model.to(self.device)
        task.prepare(self.model, self.train_items, self.device, cfg.train.precision)
        self.ema = (ModelEmaV3(self.model, decay=cfg.train.ema_decay)
                    if cfg.train.ema_decay > 0 else None)
        self.ddp = (DistributedDataParallel(self.model, find_unused_parameters=True)
                    if dist.world_size > 1 else self.model)
        o = cfg.optim
        groups = param_groups(self.model, o.weight_decay, o.backbone_lr_mult, o.decay_embeddings)
        self.stepper = OptimizerStepper(build_optimizer(o.name, groups, o.lr, o.momentum),
                                        make_grad_scaler(self.device, cfg.train.precision),
                                        o.clip_grad, o.clip_mode)
        dataset = task.train_dataset(self.train_items)
        self.sampler = (DistributedSampler(dataset, seed=cfg.train.seed)
                        if dist.world_size > 1 else None)
        self.dataset = dataset
        self.steps_per_epoch = math.ceil(
            len(dataset) / (cfg.train.batch_size * dist.world_size) / cfg.train.accum_steps)
        self.epochs = max(cfg.train.epochs, math.ceil(cfg.train.min_samples / len(dataset)))
        if self.epochs > cfg.train.epochs and dist.is_main:
            logger.info("train.min_samples=%d: %d epochs of %d samples instead of %d",
                        cfg.train.min_samples, self.epochs, len(dataset), cfg.train.epochs)
        global_batch = cfg.train.batch_size * cfg.train.accum_steps * dist.world_size
        self.lr = lr_schedule(scaled_lr(o.lr, global_batch, o.scale_lr_with_batch),
                              scaled_lr(o.min_lr, global_batch, o.scale_lr_with_batch), self.epochs,
                              self.steps_per_epoch, o.warmup_epochs)
        self.epoch, self.step, self.best_score, self.best_epoch = 0, 0, -math.inf, -1
        self.logger = MetricLogger(self.output)

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated, selected and kept: the EMA's when it is on."""
        return self.ema.module if self.ema is not None else self.model

    # -- data -------------------------------------------------------------------------------
    def loader(self, epoch: int) -> DataLoader:
        """The epoch's loader; shuffling is seeded by (seed, epoch) so a resume replays it."""
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            sampler = self.sampler
        else:
            gen = torch.Generator().manual_seed(self.cfg.train.seed * 1000 + epoch)
            sampler = RandomSampler(self.dataset, generator=gen)
        return DataLoader(self.dataset, batch_size=self.cfg.train.batch_size, sampler=sampler,
                          num_workers=self.cfg.train.num_workers, collate_fn=self.task.collate,
                          drop_last=False, persistent_workers=False)

    # -- checkpoints ------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        """The modules whose weights a training state holds."""
        return {"model": self.model} | ({"ema": self.ema.module} if self.ema is not None else {})

    def state(self) -> dict[str, Any]:
        return {**{k: m.state_dict() for k, m in self.modules().items()},
                **self.stepper.state_dict(),
                "epoch": self.epoch, "step": self.step, "best_score": self.best_score,
                "best_epoch": self.best_epoch, "config": to_dict(self.cfg)} | self.arch()

    def arch(self) -> dict[str, Any]:
        """``{"arch": backbone settings}`` when the model has an Endo-FM backbone, else ``{}``."""
        backbone = getattr(self.model, "backbone", None)
        if not isinstance(backbone, VisionTransformer):
            return {}
        return {"arch": backbone_config(backbone)}

    def resume(self) -> bool:
        path = self.output / LAST
        if not path.is_file():
            return False
        state = load_training_state(path, self.modules(), RESUME_HINT)
        self.stepper.load_state_dict(state)
        self.epoch, self.step = state["epoch"], state["step"]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        return True

    # -- training ---------------------------------------------------------------------------
    def set_lr(self) -> float:
        lr = self.lr[self.step]
        self.stepper.set_schedules(lr, self.cfg.optim.weight_decay)
        return lr

    def optimizer_step(self) -> None:
        self.stepper.step(self.model.parameters())
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)

    def train_epoch(self) -> float:
        train = self.cfg.train
        self.ddp.train()
        losses: list[float] = []
        bar = progress(self.loader(self.epoch), desc=f"epoch {self.epoch + 1}/{self.epochs}",
                       unit="batch", enabled=self.dist.is_main and train.progress)
        self.stepper.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(bar):
            if i % train.accum_steps == 0:
                lr = self.set_lr()
            with autocast(self.device, train.precision):
                loss = self.task.loss(self.ddp, to_device(batch, self.device))
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss {loss.item()} at epoch {self.epoch + 1}, "
                                   f"iteration {i}")
            self.stepper.backward(loss / train.accum_steps)
            last = i + 1 == len(bar)
            if (i + 1) % train.accum_steps == 0 or last:
                self.optimizer_step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
            if self.step % train.log_every == 0:
                self.logger.log({"train/loss": loss.item(), "lr": lr}, self.step)
        return float(np.mean(losses)) if losses else float("nan")

    def select(self, metrics: dict[str, Any]) -> bool:
        """Keep this epoch if it scores at least as well as the best so far (ties go to the
        later, longer-trained epoch)."""
        score = float(metrics[self.task.selection_metric])
        if score >= self.best_score:
            self.best_score, self.best_epoch = score, self.epoch
            return True
        return False

    def stalled(self) -> bool:
        """Early stopping: ``train.patience`` epochs since the best selection score."""
        patience = self.cfg.train.patience
        return (patience > 0 and self.val_items is not None and self.best_score > -math.inf
                and self.epoch - 1 - self.best_epoch >= patience)

    def select_initial(self) -> None:
        """Epoch 0: the starting weights (e.g. a linear-probe warm start) as the first selection
        candidate, so the kept model is never worse on the carve-out than where training began.
        Saved in ``last`` at once, so a resume does not evaluate it again."""
        metrics = run_evaluation(self.task, self.eval_model, self.val_items, self.device)
        record = {"epoch": 0} | {f"select/{k}": v for k, v in metrics.items()
                                 if isinstance(v, (int, float))}
        self.best_score, self.best_epoch = float(metrics[self.task.selection_metric]), -1
        self.save_best()
        self.logger.log(record, self.step)
        save_training_state(self.state(), self.output / LAST)
        key = f"select/{self.task.selection_metric}"
        logger.info("epoch 0/%d (starting weights): %s %.4f", self.epochs, key, record[key])

    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        if self.dist.is_main:
            start_run(cfg, self.output, self.inputs, self.restart, state_files=[LAST],
                      origin=run_origin("finetune", self.task.name))
            self.record_splits()
        barrier()
        resumed = self.resume()
        self.logger.rewind(self.step + 1)  # rows up to the checkpoint's step stay
        if self.dist.is_main and resumed:
            logger.info("resumed from %s at epoch %d", self.output / LAST, self.epoch)
        if (not resumed and self.val_items is not None and self.task.select_initial()
                and self.dist.is_main):
            self.select_initial()
        barrier()
        while self.epoch < self.epochs and not self.stalled():
            loss = self.train_epoch()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "train/loss_epoch": loss}
            is_eval_epoch = ((self.epoch + 1) % cfg.train.eval_every == 0
                             or self.epoch + 1 == self.epochs)
            if self.dist.is_main and self.val_items is not None and is_eval_epoch:
                metrics = run_evaluation(self.task, self.eval_model, self.val_items,
                                         self.device)
                record |= {f"select/{k}": v for k, v in metrics.items()
                           if isinstance(v, (int, float))}
                if self.select(metrics):
                    self.save_best()
            self.epoch += 1
            if self.dist.is_main:
                self.logger.log(record, self.step)
                save_training_state(self.state(), self.output / LAST)
                key = f"select/{self.task.selection_metric}"
                score = f", {key} {record[key]:.4f}" if key in record else ""
                logger.info("epoch %d/%d: loss %.4f%s", self.epoch, self.epochs, loss, score)
            barrier()
        return self.finish()

    def record_splits(self) -> None:
        """``splits.json``: the items of each split (the test and validation carve-outs are
        seeded by ``protocol.val_seed``, recorded in ``config.yaml``)."""
        describe = self.task.describe_item
        record = {"train": [describe(it) for it in self.train_items],
                  "selection": [describe(it) for it in self.val_items or []],
                  self.task.test_split: [describe(it) for it in self.test_items]}
        atomic_write_json(record, self.output / "splits.json")

    def save_best(self) -> None:
        """The kept weights in the task's format, with the run's settings beside them (so
        ``endofm evaluate`` needs no ``--config``)."""
        best = self.output / "best"
        self.task.save_model(self.eval_model, best)
        atomic_write_text((self.output / RUN_RECORD_NAME).read_text(encoding="utf-8"),
                          best / RUN_RECORD_NAME)

    def finish(self) -> dict[str, Any]:
        """Evaluate the kept weights on the test split once; write metrics.json and plots."""
        if not self.dist.is_main:
            barrier()
            return {}
        if self.val_items is None:
            self.save_best()
            kept = self.eval_model
        else:
            kept = self.task.load_model(self.output / "best").to(self.device)
        metrics = run_evaluation(self.task, kept, self.test_items, self.device,
                                 self.output / "test")
        result = {**metrics, "split": self.task.test_split,
                  "selection": self.cfg.protocol.selection,
                  "selected_epoch": (self.best_epoch + 1 if self.val_items is not None
                                     else self.epochs),
                  "selection_score": (self.best_score if self.val_items is not None else None),
                  "num_train_items": len(self.train_items),
                  "num_selection_items": len(self.val_items or []),
                  "num_test_items": len(self.test_items),
                  "checkpoint": str(self.output / "best"),
                  "backbone_init": self.backbone_init,
                  "data_settings": to_dict(self.cfg.data)}
        atomic_write_json(result, self.output / "metrics.json")
        finish_logs(self.logger, self.output / "loss.png",
                    lambda rows, path: plot_curves(rows, ["train/loss", "train/loss_epoch"], path,
                                                   title=self.task.name))
        barrier()
        return result


def fit(task: Task, root: str | Path, output: str | Path,
        pretrained: str | Path | None = None, restart: bool = False) -> dict[str, Any]:
    """Fine-tune ``task`` on ``root`` into ``output``; returns the test metrics (rank 0).
    An ``output`` holding a run with other settings is refused unless ``restart``."""
    dist = init_distributed(task.cfg.train.device)
    return Trainer(task, root, output, pretrained, dist, restart).run()


def fit_seeds(task_cls: type[Task], cfg: Any, root: str | Path, output: str | Path,
              pretrained: str | Path | None, seeds: int, restart: bool = False
              ) -> dict[str, Any]:
    """Run ``seeds`` fine-tunes (seed, seed+1, …) into ``output/seed_k`` and write
    ``output/metrics.json`` with each metric's mean and standard deviation."""
    output = Path(output)
    runs = []
    for k in range(seeds):
        run_cfg = copy.deepcopy(cfg)
        run_cfg.train.seed = cfg.train.seed + k
        runs.append(fit(task_cls(run_cfg), root, output / f"seed_{k}", pretrained, restart))
    keys = [k for k, v in runs[0].items() if isinstance(v, float) and not isinstance(v, bool)]
    summary: dict[str, Any] = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    summary |= {f"{k}_std": float(np.std([r[k] for r in runs])) for k in keys}
    summary["seeds"] = seeds
    summary["runs"] = [str(output / f"seed_{k}") for k in range(seeds)]
    atomic_write_json(summary, output / "metrics.json")
    return summary


def evaluate(task: Task, checkpoint: str | Path, root: str | Path, output: str | Path,
             split: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate a saved model on ``split`` (default: the task's test split) into ``output``;
    ``metrics.json`` records the checkpoint, the data settings and ``extra``."""
    dist = init_distributed(task.cfg.train.device)
    task = type(task)(task.saved_config(checkpoint))
    model = task.load_model(checkpoint).to(dist.device)
    task.bind_data(root)
    split = split or task.test_split
    items = task.read_items(root, split)
    output = Path(output)
    metrics = run_evaluation(task, model, items, dist.device, output)
    result = {**metrics, "split": split, "checkpoint": str(checkpoint),
              "num_items": len(items), "data_settings": to_dict(task.cfg.data), **(extra or {})}
    atomic_write_json(result, output / "metrics.json")
    return result
