"""One validation of the tensors a file brings into a model (model files, official checkpoints, training
checkpoints): names, shapes and dtypes first (cheap, from metadata), then values (finite; BatchNorm variances
non-negative), and a content digest so a flipped bit in a model file is detected like one in a bundle.

Shapes are compared before any value is touched, so a tensor declaring a huge shape is refused before it is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping

import torch
from torch import nn

from snn_deploy.errors import UserError

MAX_MODEL_ELEMENTS = 2_000_000_000
"""Parameters and buffers a model may declare: 8 GB of float32, about 12x the largest zoo model (172 M
parameters); refused before anything is allocated (the model is first built on the meta device)."""
LISTED = 4


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:LISTED]) + (f" (+{len(keys) - LISTED} more)" if len(keys) > LISTED else "")


def check_model_size(build: Callable[[], nn.Module], where: str) -> None:
    """Build with ``build()`` on the meta device (no memory) and refuse more than :data:`MAX_MODEL_ELEMENTS`."""
    with torch.device("meta"):
        model = build()
    elements = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    if elements > MAX_MODEL_ELEMENTS:
        raise UserError(f"{where} declares a model of {elements:,} parameters and buffers, more than the limit of "
                        f"{MAX_MODEL_ELEMENTS:,}; check its configuration (a damaged or crafted file?)")


def _variance_keys(model: nn.Module) -> set[str]:
    return {f"{name}.running_var" if name else "running_var" for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)}


def check_tensors(state: Mapping[str, object], expected: Mapping[str, torch.Tensor], where: str, *,
                  variances: set[str] = frozenset(), fix: str) -> None:
    """Every entry of ``state`` that ``expected`` names is a tensor of the expected shape and dtype kind, finite,
    and (for ``variances``) non-negative; ``fix`` ends the message (what the user should do)."""
    problems = []
    wrong_type = sorted(k for k in expected if k in state and not isinstance(state[k], torch.Tensor))
    if wrong_type:
        problems.append(f"not tensors: {_listed(wrong_type)}")
    tensors = {k: v for k, v in state.items() if k in expected and isinstance(v, torch.Tensor)}
    shapes = sorted(f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in tensors.items()
                    if tuple(v.shape) != tuple(expected[k].shape))
    if shapes:
        problems.append(f"shape mismatch(es) (file vs model): {_listed(shapes)}")
    kinds = sorted(f"{k} {v.dtype}" for k, v in tensors.items() if v.is_complex() or v.dtype == torch.bool
                   or v.is_floating_point() != expected[k].is_floating_point())
    if kinds:
        problems.append(f"wrong dtype(s): {_listed(kinds)}")
    if problems:
        raise UserError(f"{where}: {'; '.join(problems)}; {fix}")
    nonfinite = sorted(k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all()))
    if nonfinite:
        raise UserError(f"{where} holds NaN or infinite values in {_listed(nonfinite)}; {fix}")
    negative = sorted(k for k in variances if k in tensors and bool((tensors[k] < 0).any()))
    if negative:
        raise UserError(f"{where} holds negative BatchNorm variances in {_listed(negative)}; {fix}")


def check_state(model: nn.Module, state: Mapping[str, object], where: str, *, fix: str) -> None:
    """:func:`check_tensors` against ``model``'s own state dict (BatchNorm variances found by module type)."""
    check_tensors(state, model.state_dict(), where, variances=_variance_keys(model), fix=fix)


def check_finite(values: object, where: str, *, fix: str) -> None:
    """Every floating tensor anywhere inside ``values`` (dicts, lists: optimizer state) is finite."""
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            if item.is_floating_point() and not bool(torch.isfinite(item).all()):
                raise UserError(f"{where} holds NaN or infinite values; {fix}")
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 over every tensor's name, dtype, shape and bytes, in name order: same tensors, same digest."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()
