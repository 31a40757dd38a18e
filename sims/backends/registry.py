"""The backends that run a deployed graph, in one registry: ``verify``, ``simulate``, ``report`` and the CLI's
choices all read it.

A backend is a name and a runner ``run(graph, x, model) -> (spikes, logits)``: float inputs ``x`` as
:func:`~snn_deploy.graph.input_sequence` takes them ([B, C, H, W] or [T, B, C, H, W]) in, and out the spikes
[T, B, C, H, W] (uint8, functional time base) of every LIF node it exposes, and the readout's logits [B, classes].
``model`` is what the graph was made from, passed only to backends that declare ``needs_model``: the
integer-mode torch model (the torch reference), or the path of an imported netx file (the ``netx`` backend:
lava-dl's own loader in Lava); the others run the graph alone. To add one, write its runner and call
:func:`register`; import what it needs inside the runner and name it in ``requires``, so that listing backends
stays cheap and a missing library gives a clear error only when the backend is chosen.

This module imports nothing heavy at import time: the CLI reads :func:`names` to build its options.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from snn_deploy.errors import UserError

if TYPE_CHECKING:
    import torch

    from snn_deploy.graph import Graph
    from snn_deploy.graph import EventCounts

Spikes = dict[str, "torch.Tensor"]
Runner = Callable[["Graph", "torch.Tensor", Any], tuple[Spikes, "torch.Tensor"]]
CountedRunner = Callable[["Graph", "torch.Tensor"], tuple[Spikes, "torch.Tensor", "EventCounts"]]


@dataclass(frozen=True)
class Backend:
    """One way to run a graph (see the module docstring)."""

    name: str
    run: Runner
    description: str
    needs_model: bool = False
    """Runs the torch model, not the graph (``run`` receives the model); ``simulate`` cannot use it."""
    exposes_every_lif: bool = True
    """False where some LIF nodes are not visible (the torch model has no module for the AND relay of Q-K
    attention); verify compares those nodes against the next backend that has them."""
    requires: tuple[str, ...] = ()
    """Modules that must import for the backend to run (checked by :func:`get`)."""
    missing_hint: str = ""
    run_counted: CountedRunner | None = None
    """Also counts the activity the hardware sees in the same run (``simulate`` uses it where present; other
    backends' spikes are counted afterwards by :func:`~snn_deploy.sims.backends.simulator.count_events`)."""

    def check_available(self) -> None:
        """Raise a :class:`UserError` naming the missing library if a module in ``requires`` does not import."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise UserError(f"backend {self.name} needs {module}, which could not be imported ({exc})"
                                f"{'; ' + self.missing_hint if self.missing_hint else ''}") from None


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add ``backend`` (names are unique)."""
    if backend.name in _REGISTRY:
        raise ValueError(f"backend {backend.name!r} is already registered")
    _REGISTRY[backend.name] = backend
    return backend


def names(*, graph_only: bool = False) -> tuple[str, ...]:
    """Registered backend names in registration order; ``graph_only``: those that need no torch model."""
    return tuple(n for n, b in _REGISTRY.items() if not (graph_only and b.needs_model))


def help_text(*, graph_only: bool = False) -> str:
    """``name: description`` of every backend, for the CLI's help."""
    return "; ".join(f"{name}: {_REGISTRY[name].description}" for name in names(graph_only=graph_only)) + "."


def get(name: str, *, graph_only: bool = False) -> Backend:
    """The backend called ``name``, available to run; a :class:`UserError` otherwise."""
    choices = names(graph_only=graph_only)
    if name not in choices:
        raise UserError(f"unknown backend {name!r}; choose one of {', '.join(choices)}")
    backend = _REGISTRY[name]
    backend.check_available()
    return backend


# --- the built-in backends ---------------------------------------------------------------------------------------

def _torch(graph: Graph, x: torch.Tensor, model: Any) -> tuple[Spikes, torch.Tensor]:
    from snn_deploy.sims.backends.torch_reference import torch_spikes

    if model is None:
        raise UserError("backend torch runs the torch model; it cannot run a bundle alone")
    return torch_spikes(model, graph, x)


def _sim(graph: Graph, x: torch.Tensor, model: Any = None) -> tuple[Spikes, torch.Tensor]:
    from snn_deploy.sims.backends.simulator import simulate

    result = simulate(graph, x)
    return {**result.spikes, **result.graded}, result.logits  # sigma-delta layers: their payloads, compared by value


def _sim_counted(graph: Graph, x: torch.Tensor) -> tuple[Spikes, torch.Tensor, EventCounts]:
    from snn_deploy.sims.backends.simulator import simulate

    result = simulate(graph, x, counts=True)
    return result.spikes, result.logits, result.events


def _lava(graph: Graph, x: torch.Tensor, model: Any = None) -> tuple[Spikes, torch.Tensor]:
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.graph import input_sequence
    from snn_deploy.sims.backends.simulator import readout_input, readout_logits

    spikes = lava_build.run(graph, input_sequence(graph, x)).spikes
    if graph.classifier is None:  # an imported regression network: no logits
        return spikes, None
    return spikes, readout_logits(graph.readout, readout_input(graph, spikes))


def lava_per_layer(graph: Graph, x: torch.Tensor, recorded: Spikes) -> tuple[Spikes, torch.Tensor]:
    """The Lava backend one LIF layer at a time, each driven by ``recorded`` spikes (the simulator's)."""
    from snn_deploy.sims.backends import lava_build
    from snn_deploy.graph import input_sequence
    from snn_deploy.sims.backends.simulator import readout_input, readout_logits

    spikes = lava_build.run_layers(graph, input_sequence(graph, x), recorded).spikes
    if graph.classifier is None:
        return spikes, None
    return spikes, readout_logits(graph.readout, readout_input(graph, spikes))


def _onnx(graph: Graph, x: torch.Tensor, model: Any = None) -> tuple[Spikes, torch.Tensor]:
    import torch

    from snn_deploy.exporters.formats.onnx import run_onnx, to_onnx

    spikes, logits = run_onnx(to_onnx(graph), graph, x)
    return ({k: torch.as_tensor(v).to(torch.uint8) for k, v in spikes.items()},
            torch.as_tensor(logits) if logits is not None else None)


NETX = "netx"
"""The backend that runs a lava-dl netx file itself: its "model" is the file's path (``verify NETWORK.net``)."""


def _netx(graph: Graph, x: torch.Tensor, model: Any) -> tuple[Spikes, None]:
    from pathlib import Path

    from snn_deploy.sims.backends.netx_lava import run_netx
    from snn_deploy.graph import input_sequence

    if not isinstance(model, (str, Path)):
        raise UserError("backend netx runs a lava-dl netx file with lava-dl's own loader: "
                        "`snn-deploy verify NETWORK.net --backend sim,netx` (a model file: export it with "
                        "--target netx first)")
    return run_netx(model, graph, input_sequence(graph, x).numpy()), None


register(Backend("torch", _torch, "the integer-mode PyTorch model (forward hooks on its neurons)", needs_model=True,
                 exposes_every_lif=False))
register(Backend("sim", _sim, "the vectorised integer simulator", run_counted=_sim_counted))
register(Backend("lava", _lava, "Lava's bit-accurate CPU models (slow)",
                 requires=("snn_deploy.sims.backends.lava_build",), missing_hint="use --backend sim"))
register(Backend("onnx", _onnx, "ONNX Runtime running the exported ONNX model",
                 requires=("onnxruntime", "snn_deploy.exporters.formats.onnx")))
register(Backend(NETX, _netx, "lava-dl's own netx.hdf5.Network running the netx file in Lava (netx files only)",
                 needs_model=True, requires=("lava.lib.dl.netx.hdf5", "snn_deploy.sims.backends.netx_lava"),
                 missing_hint="it needs lava-nc and lava-dl"))
