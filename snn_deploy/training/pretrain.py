"""``snn-deploy pretrain``: Spikformer V2's self-supervised pre-training, masked image modelling (MAE style).

Per image, ``mask_ratio`` of the token patches (the stem's output grid; a patch is ``img_size / grid`` pixels
square) are chosen at random and zeroed at the stem input. The spiking encoder (the zoo model without its head)
turns the masked image into tokens, averaged over time; a small ANN decoder, used only here, replaces masked
tokens by a learned mask token, adds position embeddings, runs ``decoder_depth`` pre-norm transformer layers and
predicts every patch's pixels. The loss is the MSE against per-patch normalised pixels, over masked patches only.
The written model file holds the encoder (and an untouched head); ``train --init`` fine-tunes from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from snn_deploy import __version__
from snn_deploy.data import Samples, info, open_splits
from snn_deploy.errors import UserError
from snn_deploy.io import write_json_atomic
from snn_deploy.models import SpikingNetwork
from snn_deploy.training.batches import EpochView, check_batch
from snn_deploy.training.checkpoint import checkpoint_path
from snn_deploy.training.loop import fit, timing_summary
from snn_deploy.training.modelsetup import build_for, input_size
from snn_deploy.training.runtime import World, make_deterministic
from snn_deploy.training.settings import PretrainSettings
from snn_deploy.training.trainer import metrics_path

METRICS_SCHEMA = 1
NORM_EPS = 1e-6


class PatchDecoder(nn.Module):
    """Tokens [B, N, D] and mask [B, N] -> predicted pixels per patch [B, N, P]; masked tokens become a learned
    mask token before the transformer layers."""

    def __init__(self, dim: int, tokens: int, patch_pixels: int, *, width: int, depth: int) -> None:
        super().__init__()
        heads = max(1, width // 32)
        self.embed = nn.Linear(dim, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.position = nn.Parameter(torch.zeros(1, tokens, width))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=4 * width, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, patch_pixels)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        x = torch.where(mask.unsqueeze(-1), self.mask_token.expand_as(x), x) + self.position
        return self.out(self.norm(self.blocks(x)))


def grid_side(model: SpikingNetwork) -> int:
    """Side of the token grid the encoder produces (one transformer stage: Spikformer / Spikformer V2)."""
    tokens = model.config.tokens
    if len(tokens) != 1:
        raise UserError(f"pretrain needs a single-stage encoder (Spikformer V2 or Spikformer); {model.arch} is "
                        f"hierarchical")
    return int(round(tokens[0] ** 0.5))


def patchify(x: torch.Tensor, side: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, side*side, C*p*p] with p = H / side (row-major patches)."""
    b, c, h, _ = x.shape
    p = h // side
    return x.reshape(b, c, side, p, side, p).permute(0, 2, 4, 1, 3, 5).reshape(b, side * side, c * p * p)


def mask_pixels(mask: torch.Tensor, side: int, size: int) -> torch.Tensor:
    """Token mask [B, side*side] -> pixel mask [B, 1, size, size] (1 where masked)."""
    grid = mask.reshape(-1, 1, side, side).to(torch.float32)
    return grid.repeat_interleave(size // side, 2).repeat_interleave(size // side, 3)


class MaskedAutoencoder(nn.Module):
    """Encoder (a zoo model, head frozen and unused) + :class:`PatchDecoder`; ``forward`` returns the loss."""

    def __init__(self, encoder: SpikingNetwork, decoder: PatchDecoder, side: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.side = encoder, decoder, side
        encoder.head.requires_grad_(False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        visible = x * (1.0 - mask_pixels(mask, self.side, x.shape[-1]))
        features = self.encoder.forward_features(self.encoder.time_sequence(visible))  # [T, B, D, h, w]
        tokens = features.mean(0).flatten(2).transpose(1, 2)
        predicted = self.decoder(tokens, mask)
        target = patchify(x, self.side)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + NORM_EPS).sqrt()
        per_patch = ((predicted - target) ** 2).mean(-1)
        weight = mask.to(per_patch.dtype)
        return (per_patch * weight).sum() / weight.sum()


class MaskedView(EpochView):
    """A training view whose target is a random token mask drawn from the sample's own generator."""

    def __init__(self, samples: Samples, *, seed: int, augment: bool, tokens: int, masked: int) -> None:
        super().__init__(samples, seed=seed, augment=augment)
        self.tokens, self.masked = tokens, masked

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = self.samples.sample(i, rng if self.augment else None)
        mask = np.zeros(self.tokens, dtype=bool)
        mask[rng.choice(self.tokens, size=self.masked, replace=False)] = True
        return x, torch.from_numpy(mask)


def pretrain(settings: PretrainSettings, *, output: Path, data_dir: str | Path | None, resume: bool, threads: int,
             world: World) -> dict[str, Any]:
    """Run (or resume) pre-training and write the encoder's model file and metrics; returns the metrics."""
    make_deterministic(settings.seed, threads)
    data = info(settings.dataset)
    if data.kind != "image":
        raise UserError(f"pretrain masks image patches; {settings.dataset} is {data.kind} data: pick an image data set")
    size = input_size(settings.model, data)
    splits = open_splits(settings.dataset, size=size, T=settings.T, data_dir=data_dir)
    check_batch(settings.batch_size, world, settings.micro_batches, len(splits.train))
    encoder = build_for(settings.model, data, size=size, T=settings.T, classes=len(splits.train.classes),
                        neuron=settings.neuron, seed=settings.seed)
    side = grid_side(encoder)
    tokens = side * side
    masked = int(round(settings.mask_ratio * tokens))
    if not 0 < masked < tokens:
        raise UserError(f"--mask-ratio {settings.mask_ratio} masks {masked} of {tokens} patches; choose a ratio that "
                        f"leaves some patches masked and some visible")
    decoder = PatchDecoder(encoder.config.embed_dim, tokens, data.channels * (size // side) ** 2,
                           width=settings.decoder_width, depth=settings.decoder_depth)
    mae = MaskedAutoencoder(encoder, decoder, side).to(world.device)
    view = MaskedView(splits.train, seed=settings.seed, augment=settings.augment, tokens=tokens, masked=masked)
    run = fit(mae, lambda net, x, mask: (net(x, mask), 0), view, schedule=settings, world=world,
              checkpoint=checkpoint_path(output), settings=settings.as_dict(), resume=resume,
              after_epoch=dict, describe=lambda r, t: (
                  f"epoch {r['epoch']}/{settings.epochs}  masked-patch loss {r['train_loss']:.4f}  "
                  f"{t['train_samples_per_s']:.0f} samples/s  {t['seconds']:.1f} s"))
    history = [{"epoch": r["epoch"], "lr": r["lr"], "loss": r["train_loss"]} for r in run.history]
    metrics = {
        "schema_version": METRICS_SCHEMA,
        "command": "pretrain",
        "model": settings.model,
        "dataset": settings.dataset,
        "settings": settings.as_dict(),
        "processes": world.size,
        "threads": threads,
        "train_samples": len(splits.train),
        "patches": {"grid": side, "masked": masked, "pixels_per_patch": (size // side) ** 2},
        "epochs": history,
        "final_loss": history[-1]["loss"],
        "software": {"snn_deploy": __version__, "torch": torch.__version__},
        "timing": timing_summary(run.timing),
    }
    if world.main:
        from snn_deploy.modelfile import save_model

        save_model(encoder, output, source=f"data set {settings.dataset}",
                   created_from="snn-deploy pretrain (masked image modelling; encoder only, head untrained)",
                   provenance={"dataset": settings.dataset, "epochs": settings.epochs, "seed": settings.seed,
                               "final_loss": metrics["final_loss"], "pretraining": settings.as_dict()})
        write_json_atomic(metrics_path(output), metrics)
        checkpoint_path(output).unlink(missing_ok=True)
    world.barrier()
    return metrics
