"""The epoch loop shared by ``train`` and ``pretrain``: AdamW steps on a loss, per-epoch hooks, checkpoints.

A task supplies ``loss_fn(net, inputs, targets) -> (mean loss, correct count)`` and ``after_epoch()`` (e.g. test
accuracy); the loop owns the schedule, micro-batching, DistributedDataParallel, progress and resumption.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from snn_deploy.optimisation import Optimisation
from snn_deploy.training.batches import EpochView, micro_split, train_batches
from snn_deploy.training.checkpoint import load_checkpoint, save_checkpoint
from snn_deploy.training.progress import Reporter, reporter
from snn_deploy.training.runtime import World
from snn_deploy.training.schedule import learning_rate

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, int]]


@dataclass
class Run:
    """What the loop produced: per-epoch deterministic records and their timings."""

    history: list[dict]
    timing: list[dict]


def make_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and kernels only, not on biases and BatchNorm (as timm does)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=lr)


def run_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, view: EpochView, loss_fn: LossFn, *, epoch: int,
              schedule: Optimisation, world: World, progress: Reporter) -> dict:
    """One pass over the training view; returns the epoch's record (mean loss, accuracy, last learning rate)."""
    net.train()
    steps = len(view) // schedule.batch_size
    parts = schedule.micro_batches
    loss_sum, correct, seen, lr = 0.0, 0, 0, 0.0
    for i, (x, y) in enumerate(train_batches(view, epoch=epoch, batch_size=schedule.batch_size, world=world)):
        lr = learning_rate(epoch * steps + i, base=schedule.lr, warmup_steps=schedule.warmup_epochs * steps,
                           total_steps=schedule.epochs * steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        batch_loss, batch_correct = 0.0, 0
        for j, (xm, ym) in enumerate(micro_split(x.to(world.device), y.to(world.device), parts)):
            with nullcontext() if j == parts - 1 or not world.distributed else net.no_sync():
                loss, hits = loss_fn(net, xm, ym)
                (loss / parts).backward()
            batch_loss += float(loss.detach()) * ym.shape[0]
            batch_correct += hits
        optimizer.step()
        loss_sum, correct, seen = loss_sum + batch_loss, correct + batch_correct, seen + y.shape[0]
        progress.batch(y.shape[0] * world.size, batch_loss * world.size, batch_correct * world.size)
    loss_all, correct_all, seen_all = world.sum([loss_sum, correct, seen])
    return {"epoch": epoch + 1, "lr": lr, "train_loss": loss_all / seen_all, "train_accuracy": correct_all / seen_all}


def fit(model: nn.Module, loss_fn: LossFn, view: EpochView, *, schedule: Optimisation, world: World,
        checkpoint: Path, settings: dict, resume: bool, after_epoch: Callable[[], dict],
        describe: Callable[[dict, dict], str]) -> Run:
    """Train ``model`` for the schedule's epochs (from the checkpoint if ``resume``), checkpointing every epoch.

    ``after_epoch()`` adds fields to each epoch's record; ``describe(record, timing)`` is the epoch's summary line.
    """
    optimizer = make_optimizer(model, schedule.lr, schedule.weight_decay)
    run = Run([], [])
    if resume:
        state = load_checkpoint(checkpoint, settings, world.size, model)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        run = Run(state["history"], state["timing"])
    net = DistributedDataParallel(model) if world.distributed else model
    steps = len(view) // schedule.batch_size
    progress = reporter(world.main)
    try:
        for epoch in range(len(run.history), schedule.epochs):
            progress.start("epoch", epoch + 1, schedule.epochs, steps)
            t0 = time.perf_counter()
            record = run_epoch(net, optimizer, view, loss_fn, epoch=epoch, schedule=schedule, world=world,
                               progress=progress)
            train_seconds = time.perf_counter() - t0
            world.share_buffers(model)
            record.update(after_epoch())
            run.history.append(record)
            run.timing.append({"epoch": epoch + 1, "train_seconds": train_seconds,
                               "train_samples_per_s": steps * schedule.batch_size / train_seconds,
                               "seconds": time.perf_counter() - t0})
            progress.end(describe(record, run.timing[-1]))
            if world.main:
                save_checkpoint(checkpoint, {"settings": settings, "world_size": world.size,
                                             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                             "history": run.history, "timing": run.timing})
            world.barrier()
    finally:
        progress.close()
    return run


def timing_summary(timing: list[dict]) -> dict:
    """The metrics' ``timing`` object: per-epoch times, total seconds, mean training throughput."""
    return {"epochs": timing, "seconds": sum(t["seconds"] for t in timing),
            "train_samples_per_s": sum(t["train_samples_per_s"] for t in timing) / len(timing)}
