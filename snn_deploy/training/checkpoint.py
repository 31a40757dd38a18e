"""Training checkpoints: ``<output stem>.ckpt`` beside the model file, rewritten atomically after every epoch.

Contents: the settings (``--resume`` refuses a different run), the process count, epochs and optimizer steps
done, model and optimizer state, and the per-epoch history. Read back with ``weights_only=True``; the model's
tensors are validated like a model file's (shapes, dtypes, finite values), the optimizer state must be finite.
A write that fails (a full disk) leaves the previous checkpoint as it was and is one ``error:`` line.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from snn_deploy.errors import UserError
from snn_deploy.io import write_bytes_atomic
from snn_deploy.models.tensors import check_finite, check_state
from snn_deploy.models.torchfile import read_torch_file

FORMAT = "snn-deploy-train-checkpoint"
FORMAT_VERSION = 1


def checkpoint_path(output: Path) -> Path:
    return output.with_suffix(".ckpt")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path, settings: dict[str, Any], world_size: int,
                    model: torch.nn.Module) -> dict[str, Any]:
    """The checkpoint at ``path``, which must belong to a run with these settings and process count and hold
    valid tensors for ``model``."""
    if not path.exists():
        raise UserError(f"--resume: no checkpoint {path} to resume from; start the run without --resume")
    state = read_torch_file(path, "training checkpoint")
    if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("format_version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a snn-deploy training checkpoint of version {FORMAT_VERSION}; delete it and "
                        f"start again")
    if state.get("settings") != settings:
        stored = state.get("settings") or {}
        diff = sorted(k for k in set(stored) | set(settings) if stored.get(k) != settings.get(k))
        raise UserError(f"--resume: checkpoint {path} belongs to a run with different settings ({', '.join(diff)}); "
                        f"pass the same options as the interrupted run, or delete the checkpoint")
    if state.get("world_size") != world_size:
        raise UserError(f"--resume: checkpoint {path} was written by {state.get('world_size')} process(es), this run "
                        f"has {world_size}; resume with the same process count")
    fix = "delete it and start the run again without --resume"
    if not isinstance(state.get("model"), dict) or not isinstance(state.get("optimizer"), dict):
        raise UserError(f"training checkpoint {path} is damaged (no model or optimizer state); {fix}")
    check_state(model, state["model"], f"training checkpoint {path}", fix=fix)
    check_finite(state["optimizer"], f"training checkpoint {path} (optimizer state)", fix=fix)
    return state
