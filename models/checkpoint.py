"""Import trained weights saved by the official Spikformer / QKFormer training scripts.

Accepted containers: timm's ``{'state_dict': ..., 'state_dict_ema': ..., 'epoch', 'arch', 'args', ...}``,
QKFormer's ``{'model': ..., 'optimizer', 'epoch', 'scaler', 'args'}`` and a bare state dict; ``ema=True`` takes timm's
EMA copy (``state_dict_ema``) instead, and the report names the copy used. A ``module.`` (DistributedDataParallel)
or ``_orig_mod.`` (torch.compile) prefix is stripped. Our modules carry the official attribute names (``*_conv``,
``*_linear``, ``*_bn``, ``tssa``/``attn``/``ssa``, ``fc*``/``mlp*``), so keys map 1:1. Tensors the official
forward never uses (LayerNorms ``norm1``/``norm2``/``norm``, DVS ``pos_embed``) are skipped and reported;
BatchNorm ``num_batches_tracked`` counters that older checkpoints lack are set to 0 (as torch and timm do; they
only matter for momentum-free BatchNorm, which no family uses). Any other missing or unexpected key or shape
mismatch is an error that names the keys and the zoo architecture the checkpoint looks like. Values are checked
like a model file's (finite, BatchNorm variances >= 0).
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snn_deploy.errors import UserError
from snn_deploy.models.networks import SpikingNetwork
from snn_deploy.models.registry import create, names, spec
from snn_deploy.models.tensors import check_state
from snn_deploy.models.torchfile import read_torch_file

CONTAINER_KEYS = ("state_dict", "model")
EMA_KEY = "state_dict_ema"
COUNTER_SUFFIX = "num_batches_tracked"
PREFIXES = ("module.", "_orig_mod.")
_SPIKFORMER_UNUSED = re.compile(r"(block\.\d+\.norm[12]|norm)\.(weight|bias)|pos_embed")
UNUSED_OFFICIAL: dict[str, re.Pattern[str] | None] = {
    "spikformer": _SPIKFORMER_UNUSED, "spikformer-v2": _SPIKFORMER_UNUSED, "qkformer": None}
"""Per family, the official tensors that forward() never reads (QKFormer has none)."""
CHECKPOINT_GLOBALS = (argparse.Namespace,)
"""The official scripts pickle their argparse arguments next to the weights; a Namespace is plain data."""
LISTED_KEYS = 6


@dataclass
class ImportReport:
    """What an import did: container layout (naming the copy used), stripped prefix, tensors loaded, official
    tensors skipped, whether the checkpoint also holds EMA weights."""

    layout: str
    prefix: str
    loaded: int
    skipped: list[str]
    has_ema: bool = False


def _key_list(keys: list[str]) -> str:
    shown = ", ".join(keys[:LISTED_KEYS])
    return shown + (f" (+{len(keys) - LISTED_KEYS} more)" if len(keys) > LISTED_KEYS else "")


def extract_state_dict(obj: Any, where: str, *, ema: bool = False) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a checkpoint object (its EMA copy with ``ema``) and the name of its layout."""
    if ema:
        if not isinstance(obj, dict) or not isinstance(obj.get(EMA_KEY), dict):
            raise UserError(f"{where} has no EMA weights ('{EMA_KEY}'); import it without --ema")
    if isinstance(obj, dict):
        for key in (EMA_KEY,) if ema else CONTAINER_KEYS:
            if isinstance(obj.get(key), dict):
                state = obj[key]
                bad = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
                if bad:
                    raise UserError(f"{where}: entry '{key}' is not a state dict ({_key_list(bad)} hold no tensor); "
                                    f"pass the checkpoint written by the training script")
                return state, f"{{'{key}': ...}}"
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return obj, "bare state dict"
        keys = ", ".join(sorted(map(str, obj))[:LISTED_KEYS])
        raise UserError(f"{where} holds no state dict: expected a 'state_dict' or 'model' entry or a bare state "
                        f"dict, found keys {keys or '(none)'}; pass the checkpoint written by the training script")
    raise UserError(f"{where} holds a {type(obj).__name__}, not a checkpoint dict; pass the checkpoint written by the "
                    f"training script")


def strip_prefix(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Remove a wrapper prefix that every key carries (``module.``, ``_orig_mod.``), repeatedly."""
    stripped = ""
    for _ in range(len(PREFIXES)):
        prefix = next((p for p in PREFIXES if state and all(k.startswith(p) for k in state)), None)
        if prefix is None:
            break
        state = {k[len(prefix):]: v for k, v in state.items()}
        stripped += prefix
    return state, stripped


def load_official_state(model: SpikingNetwork, state: dict[str, torch.Tensor], where: str) -> tuple[int, list[str]]:
    """Load ``state`` into ``model`` strictly, skipping only known-unused official tensors.

    Returns (tensors loaded, skipped keys); raises :class:`UserError` naming missing, unexpected and
    shape-mismatched keys.
    """
    ours = model.state_dict()
    unused = UNUSED_OFFICIAL[model.config.family]
    skipped = sorted(k for k in state if k not in ours and unused is not None and unused.fullmatch(k))
    state = {**{k: torch.zeros_like(v, device="cpu") for k, v in ours.items() if k.endswith(COUNTER_SUFFIX)}, **state}
    missing = sorted(set(ours) - set(state))
    unexpected = sorted(set(state) - set(ours) - set(skipped))
    mismatched = sorted(k for k in set(ours) & set(state) if tuple(ours[k].shape) != tuple(state[k].shape))
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_key_list(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_key_list(unexpected)}")
    if mismatched:
        shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(ours[k].shape)}" for k in mismatched]
        problems.append(f"{len(mismatched)} shape mismatch(es) (checkpoint vs model): {_key_list(shapes)}")
    if problems:
        raise UserError(f"{where} does not fit architecture {model.arch}: {'; '.join(problems)}; "
                        f"{closest_architecture(state, model.arch)}check --model and the overrides (num_classes, "
                        "in_channels)")
    check_state(model, state, where, fix="the checkpoint is damaged: download or export it again")
    model.load_state_dict({k: state[k] for k in ours}, strict=True)
    return len(ours), skipped


def closest_architecture(state: dict[str, torch.Tensor], tried: str | None) -> str:
    """``"it looks like NAME (a FAMILY model, K of N tensors fit); "`` for the zoo architecture whose tensor names
    and shapes (ignoring the head) match ``state`` best, or ``""`` when none shares a tensor."""
    shapes = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    best, best_fit, best_total = None, 0, 0
    for name in names():
        with torch.device("meta"):
            theirs = create(name).state_dict()
        fit = sum(1 for k, v in theirs.items() if shapes.get(k) == tuple(v.shape) or
                  (k.startswith("head.") and k in shapes))
        if fit > best_fit:
            best, best_fit, best_total = name, fit, len(theirs)
    if best is None or best == tried:
        return ""
    return f"it looks like {best} (a {spec(best).family} model, {best_fit} of {best_total} tensors fit); "


def import_checkpoint(path: str | Path, arch: str, *, mode: str = "float", ema: bool = False,
                      **overrides: Any) -> tuple[SpikingNetwork, ImportReport]:
    """Build ``arch`` (with ``overrides``) and load the official checkpoint at ``path`` (its EMA copy with ``ema``)
    into it."""
    where = f"checkpoint {path}"
    model = create(arch, mode=mode, **overrides)
    obj = read_torch_file(path, "checkpoint", CHECKPOINT_GLOBALS)
    state, layout = extract_state_dict(obj, where, ema=ema)
    state, prefix = strip_prefix(state)
    loaded, skipped = load_official_state(model, state, where)
    has_ema = isinstance(obj, dict) and isinstance(obj.get(EMA_KEY), dict)
    return model.eval(), ImportReport(layout, prefix, loaded, skipped, has_ema)
