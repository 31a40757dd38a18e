"""Shared fixtures for export tests: quantized tiny models with non-trivial activity."""

from __future__ import annotations

import torch

import snn_deploy.models as zoo
from snn_deploy.quant import quantize


def active_model(name: str, seed: int = 0, mode: str = "loihi", **overrides) -> torch.nn.Module:
    """A tiny zoo model (config ``overrides``) whose BatchNorms are set so that every layer spikes (random init
    alone barely does)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = zoo.create(name, mode=mode, **overrides).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = torch.rand(n, generator=gen) * 2 + 1
            module.bias.data = torch.rand(n, generator=gen) * 1.2
            module.running_var = torch.rand(n, generator=gen) * 1.5 + 0.5
            module.running_mean = torch.rand(n, generator=gen) * 0.4 - 0.2
    return model


def quantized(name: str, seed: int = 0) -> torch.nn.Module:
    model = active_model(name, seed)
    quantize(model)
    return model


def images(n: int, size: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))


def run_cli(*args) -> tuple[int, str]:
    """``snn-deploy ARGS`` in-process: (exit code, output)."""
    from click.testing import CliRunner

    from snn_deploy.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def error_line(output: str) -> str:
    """The single ``error:`` line of a refused command."""
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]
