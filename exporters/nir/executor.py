r"""Reference executor: a NIR file run whole in plain PyTorch, read as a standard NIR consumer reads it.

It reads what NIR defines (node types, float parameters, edges; every edge into a node is summed) plus the one
documented extension ``snn_deploy.spike_product`` (docs/nir_mapping.md), never the integer metadata that
``nir_io.read`` deploys from. Agreement between this executor and ``snn-deploy simulate`` on an exported file is
therefore what another framework can reproduce from the file's floats; ``neurons="snntorch"`` / ``"norse"`` /
``"spikingjelly"`` take each spiking node from that framework's own NIR node map instead (the standard-node part
run by the framework, the wiring and the extension here).

Time is discrete with the step ``dt`` (the ``dt`` argument, else graph metadata ``snn_deploy.dt``, else
``nir_io.DT``) and forward Euler. At every step the nodes run in topological order of the edges. A recurrent edge (a
neuron's own loop through linear nodes, :func:`~snn_deploy.exporters.nir.io.with_loops`) carries the loop's value of
the step before (at step 0: its value for silent neurons, e.g. an ``Affine``'s bias); other cycles are refused.

* ``Conv2d``: ``conv2d(x, weight, bias)``; ``SumPool2d``: window sums (zero padding); ``AvgPool2d``: window means;
  ``Affine``: ``W x + b``; ``Linear``: ``W x``; ``Scale``: ``s * x``; ``Flatten``: over the dimensions of one
  sample (NIR shapes have no batch dimension).
* ``CubaLIF``: :math:`I_t = I_{t-1} + \frac{dt}{\tau_{syn}} (w_{in} S_t - I_{t-1})`,
  :math:`v' = v_{t-1} + \frac{dt}{\tau_{mem}} (v_{leak} - v_{t-1} + r I_t)`, :math:`z_t = v' > v_{th}`,
  :math:`v_t = v_{reset}` where :math:`z_t` else :math:`v'`. ``LIF`` is the same with :math:`I_t = S_t`;
  ``IF``: :math:`v' = v_{t-1} + dt\, r S_t` (NIR's :math:`\dot v = R I`).
* ``Delay`` carrying ``snn_deploy.spike_product`` (metadata ``extension``): per head, ``q (k^T v) * scale`` of the
  operands named by ``operands`` in that order; ``scale`` (metadata ``float_scale``) is the integer multiplier
  divided by the consuming LIF's integer threshold, as every float weight of the file is.
* ``Output``: the sum of its inputs; the logits are its mean over the steps (graph metadata ``time_mean_readout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nir
import numpy as np
import torch

from snn_deploy.errors import UserError
from snn_deploy.exporters.nir import ops
from snn_deploy.exporters.nir.io import DT, SPIKE_PRODUCT_EXTENSION, linear_behind, with_loops
from snn_deploy.fixedpoint import spike_product
from snn_deploy.fixedpoint.limits import payload_range

SPIKING = (nir.CubaLIF, nir.LIF, nir.IF)
STATELESS = (nir.Input, nir.Output, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Affine, nir.Linear, nir.Scale,
             nir.Flatten)


@dataclass
class ExecResult:
    """Spikes [T, B, *shape] (bool) per spiking node, the output node's value at every step [T, B, K], and the
    logits (that output averaged over the steps)."""

    spikes: dict[str, torch.Tensor]
    outputs: torch.Tensor

    @property
    def logits(self) -> torch.Tensor:
        return self.outputs.mean(0)

    @property
    def predictions(self) -> torch.Tensor:
        return self.logits.argmax(1)


def _meta(node_or_graph) -> dict:
    meta = getattr(node_or_graph, "metadata", None)
    return meta.get("snn_deploy", {}) if isinstance(meta, dict) else {}


def _str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def is_spike_product(node: nir.NIRNode) -> bool:
    """The ``snn_deploy.spike_product`` extension node (a ``Delay`` whose metadata names the extension)."""
    return isinstance(node, nir.Delay) and _str(_meta(node).get("extension", "")) == SPIKE_PRODUCT_EXTENSION


LINEAR = ops.LINEAR


def topological_order(ir: nir.NIRGraph) -> tuple[list[str], dict[str, list[str]]]:
    """Node names in an order where every edge but a neuron's own loop goes forward, and those loops (neuron ->
    the nodes closing them); any other cycle is a :class:`UserError`."""
    order, _, cyclic, loops = with_loops(ir, SPIKING, LINEAR)
    if cyclic:
        raise UserError(f"NIR graph has recurrent edges through {sorted(cyclic)} that are no neuron's own loop "
                        "through linear nodes: the reference executor cannot run them")
    return order, loops


NeuronFactory = Callable[[str, nir.NIRNode, float], "Neuron"]


class Neuron:
    """A spiking node's state over one run: ``step(current)`` returns the spikes of one step (0/1 floats)."""

    def reset(self) -> None:
        raise NotImplementedError

    def step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class EulerNeuron(Neuron):
    """CubaLIF / LIF / IF by forward Euler (the equations in the module docstring), in ``dtype``."""

    def __init__(self, node: nir.NIRNode, dt: float, dtype: torch.dtype) -> None:
        def p(value) -> torch.Tensor:
            return torch.from_numpy(np.array(value, dtype=np.float64)).to(dtype)

        self.kind, self.dt = type(node), dt
        self.threshold, self.reset_to = p(node.v_threshold), p(getattr(node, "v_reset", 0.0))
        self.r = p(node.r)
        if isinstance(node, nir.CubaLIF):
            self.syn, self.w_in = p(dt / np.asarray(node.tau_syn, dtype=np.float64)), p(node.w_in)
        if isinstance(node, (nir.CubaLIF, nir.LIF)):
            tau = node.tau_mem if isinstance(node, nir.CubaLIF) else node.tau
            self.mem, self.leak = p(dt / np.asarray(tau, dtype=np.float64)), p(node.v_leak)
        self.dtype = dtype
        self.i = self.v = None

    def reset(self) -> None:
        self.i = self.v = None

    def step(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        if self.v is None:
            self.i, self.v = torch.zeros_like(x), torch.zeros_like(x)
        if self.kind is nir.CubaLIF:
            self.i = self.i + self.syn * (self.w_in * x - self.i)
            v = self.v + self.mem * (self.leak - self.v + self.r * self.i)
        elif self.kind is nir.LIF:
            v = self.v + self.mem * (self.leak - self.v + self.r * x)
        else:
            v = self.v + self.dt * self.r * x
        z = v > self.threshold
        self.v = torch.where(z, self.reset_to.expand_as(v), v)
        return z.to(self.dtype)


def torch_neurons(dtype: torch.dtype = torch.float32) -> NeuronFactory:
    """Neurons computed here (plain PyTorch, forward Euler) in ``dtype``: float32 is what frameworks compute."""
    return lambda name, node, dt: EulerNeuron(node, dt, dtype)


class _Framework(Neuron):
    """A spiking node as a framework's NIR importer builds it: ``module`` from the framework's node map."""

    def __init__(self, module: torch.nn.Module, stateful_call: bool) -> None:
        self.module, self.stateful_call, self.state = module, stateful_call, None
        self.reset()

    def reset(self) -> None:
        self.state = None
        if hasattr(self.module, "reset_mem"):  # snnTorch modules keep their state (init_hidden)
            self.module.reset_mem()

    def step(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.stateful_call:
            z, self.state = self.module(x, self.state)
        else:
            z = self.module(x)
        return z.float()


def _framework_neurons(label: str, build: Callable[[nir.NIRNode, float], torch.nn.Module | None],
                       stateful_call: bool) -> NeuronFactory:
    """Neurons built by a framework's node map ``build(node, dt)``; a refusal is a :class:`UserError`."""
    def make(name: str, node: nir.NIRNode, dt: float) -> Neuron:
        try:
            module = build(node, dt)
        except (KeyError, ValueError, AssertionError, NotImplementedError) as exc:
            raise UserError(f"{name}: {label}'s NIR importer refuses {type(node).__name__}: {exc}") from None
        if module is None:
            raise UserError(f"{name}: {label}'s NIR importer has no mapping for {type(node).__name__}")
        return _Framework(module, stateful_call)
    return make


def snntorch_neurons() -> NeuronFactory:
    """Spiking nodes as snnTorch's ``import_from_nir`` maps them (its node map, its fixed step 1e-4 s)."""
    from snntorch.import_nir import _nir_to_snntorch_module

    def build(node: nir.NIRNode, dt: float) -> torch.nn.Module | None:
        if not np.isclose(dt, 1e-4):
            raise ValueError(f"it assumes dt = 1e-4 s; this file's step is {dt}")
        return _nir_to_snntorch_module(node, init_hidden=True)
    return _framework_neurons("snnTorch", build, stateful_call=False)


def norse_neurons() -> NeuronFactory:
    """Spiking nodes as Norse's ``from_nir(graph, dt=dt)`` maps them (its node map, at this file's step)."""
    from norse.torch.utils.import_nir import _import_norse_module

    return _framework_neurons("Norse", lambda node, dt: _import_norse_module(node, dt=dt), stateful_call=True)


def spikingjelly_neurons() -> NeuronFactory:
    """Spiking nodes as SpikingJelly's ``import_from_nir(graph, dt=dt)`` maps them (its node map)."""
    from spikingjelly.activation_based.nir_exchange.from_nir import _NodeMapper

    return _framework_neurons("SpikingJelly", lambda node, dt: _NodeMapper(dt=dt).map_dict[type(node)](node),
                              stateful_call=True)


FRAMEWORKS: dict[str, Callable[[], NeuronFactory]] = {"snntorch": snntorch_neurons, "norse": norse_neurons,
                                                     "spikingjelly": spikingjelly_neurons}
"""``Executor(neurons=...)`` names besides ``"torch"`` (this module's own neurons, in the executor's dtype)."""


class Executor:
    """A NIR graph prepared once (parameters as tensors, node order, neurons); :meth:`run` executes a batch."""

    def __init__(self, ir: nir.NIRGraph, *, neurons: str | NeuronFactory = "torch",
                 dtype: torch.dtype = torch.float32, dt: float | None = None) -> None:
        meta = _meta(ir)
        known = {SPIKE_PRODUCT_EXTENSION}
        needed = [_str(e) for e in np.atleast_1d(meta.get("required_extensions", []))]
        if [e for e in needed if e not in known]:
            raise UserError(f"NIR file requires extensions {needed}; this executor implements {sorted(known)}")
        self.ir, self.dtype = ir, dtype
        self.dt = float(dt if dt is not None else meta.get("dt", DT))  # files of other tools carry no dt
        self.order, self.loops = topological_order(ir)
        self.sources = {name: [s for s, d in ir.edges if d == name and s not in self.loops.get(name, ())]
                        for name in ir.nodes}
        self.members = {n: set().union(*(linear_behind(ir, self.sources, p, LINEAR)[0] for p in back))
                        for n, back in self.loops.items()}
        self.previous: dict[str, torch.Tensor] = {}
        unsupported = [f"{name} ({type(node).__name__})" for name, node in ir.nodes.items()
                       if not (isinstance(node, SPIKING + STATELESS) or is_spike_product(node))]
        if unsupported:
            raise UserError(f"the reference executor cannot run NIR nodes {unsupported}: it implements "
                            f"{sorted(t.__name__ for t in SPIKING + STATELESS)} and {SPIKE_PRODUCT_EXTENSION}")
        if isinstance(neurons, str) and neurons != "torch" and neurons not in FRAMEWORKS:
            raise UserError(f"unknown neurons {neurons!r}; choose torch, {', '.join(FRAMEWORKS)} or a factory")
        factory = (torch_neurons(dtype) if neurons == "torch" else
                   FRAMEWORKS[neurons]() if isinstance(neurons, str) else neurons)
        self.neurons = {name: factory(name, node, self.dt) for name, node in ir.nodes.items()
                        if isinstance(node, SPIKING)}
        self.params = {name: self._prepare(name, node) for name, node in ir.nodes.items()}
        inputs = [n for n in self.order if isinstance(ir.nodes[n], nir.Input)]
        outputs = [n for n in self.order if isinstance(ir.nodes[n], nir.Output)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise UserError(f"the reference executor runs graphs with one Input and one Output node, not "
                            f"{len(inputs)} and {len(outputs)}")
        self.input_name, self.output_name = inputs[0], outputs[0]

    def _tensor(self, value) -> torch.Tensor:
        return torch.from_numpy(np.array(value, dtype=np.float64)).to(self.dtype)

    def _prepare(self, name: str, node: nir.NIRNode) -> dict:
        if isinstance(node, LINEAR):
            return ops.prepare(node, self._tensor)
        if is_spike_product(node):
            m = _meta(node)
            operands = [_str(o) for o in np.atleast_1d(m["operands"])]
            if sorted(operands) != sorted(self.sources[name]) or len(operands) != 3:
                raise UserError(f"{name}: {SPIKE_PRODUCT_EXTENSION} names operands {operands}, but its edges come "
                                f"from {self.sources[name]}")
            if "float_scale" not in m:
                raise UserError(f"{name}: {SPIKE_PRODUCT_EXTENSION} node without float_scale (written by an older "
                                "snn-deploy): re-export the model")
            return dict(operands=operands, heads=int(m["heads"]), scale=float(m["float_scale"]))
        return {}

    def reset(self) -> None:
        for neuron in self.neurons.values():
            neuron.reset()
        self.previous = {}

    def _loop(self, name: str, silent: torch.Tensor) -> list[torch.Tensor]:
        """What neuron ``name``'s loops deliver this step: their values of the step before, or at the first step
        their values for a silent neuron (``silent``: zeros shaped like its output)."""
        if not self.previous:
            values = {name: silent}
            for q in self.order:
                if q in self.members[name]:
                    values[q] = self._linear(q, sum(values[s] for s in self.sources[q]))
            return [values[p] for p in self.loops[name]]
        return [self.previous[p] for p in self.loops[name]]

    def _linear(self, name: str, total: torch.Tensor) -> torch.Tensor:
        node = self.ir.nodes[name]
        return ops.apply(node, self.params[name], total) if isinstance(node, LINEAR) else total  # Output

    def step(self, x: torch.Tensor, spikes: dict[str, list[torch.Tensor]] | None = None) -> torch.Tensor:
        """One time step of input ``x`` [B, *input shape]; returns the output node's value [B, K]."""
        values: dict[str, torch.Tensor] = {}
        for name in self.order:
            node, p = self.ir.nodes[name], self.params[name]
            if isinstance(node, nir.Input):
                values[name] = x.to(self.dtype)
                continue
            if is_spike_product(node):
                values[name] = _spike_product(*(values[o] for o in p["operands"]), p["heads"], p["scale"])
                continue
            inputs = [values[s] for s in self.sources[name]]
            if not inputs:
                raise UserError(f"NIR node {name!r} has no incoming edge")
            if name in self.loops:
                inputs += self._loop(name, torch.zeros_like(inputs[0]))
            total = inputs[0] if len(inputs) == 1 else torch.stack(inputs).sum(0)
            if isinstance(node, SPIKING):
                out = self.neurons[name].step(total).to(self.dtype)
                if spikes is not None:
                    spikes.setdefault(name, []).append(out.bool())
            else:
                out = self._linear(name, total)
            values[name] = out
        self.previous = {p: values[p] for back in self.loops.values() for p in back}
        return values[self.output_name]

    @torch.no_grad()
    def run(self, x: torch.Tensor, steps: int | None = None) -> ExecResult:
        """Run inputs [B, *shape] (the same at each of ``steps`` steps, default the graph's ``T``) or [T, B, *shape]
        from a fresh state."""
        per_sample = len(np.atleast_1d(self.ir.nodes[self.input_name].input_type["input"]))
        if x.dim() not in (per_sample + 1, per_sample + 2):
            raise UserError(f"inputs shaped {tuple(x.shape)} do not fit the graph's {per_sample}-dimensional input "
                            "(expected [B, *shape] or [T, B, *shape])")
        steps = steps or int(_meta(self.ir).get("T", 1))
        frames = x.unsqueeze(0).expand(steps, *x.shape) if x.dim() == per_sample + 1 else x
        self.reset()
        spikes: dict[str, list[torch.Tensor]] = {}
        outputs = torch.stack([self.step(frame, spikes) for frame in frames])
        return ExecResult({name: torch.stack(s) for name, s in spikes.items()}, outputs)


def _spike_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, scale: float) -> torch.Tensor:
    """``q (k^T v) * scale`` per head of [B, C, H, W] tensors (channel c in head c // (C / heads), tokens
    row-major): :func:`snn_deploy.fixedpoint.spike_product` on the float tensors."""
    b, c, h, w = q.shape
    return spike_product(*(x.reshape(b, c, h * w) for x in (q, k, v)), heads, scale).reshape(b, c, h, w)


def payload_grid(ir: nir.NIRGraph, x: torch.Tensor) -> torch.Tensor:
    """Inputs on the grid the hardware receives, ``clip(round(x * scale)) / scale`` (the Input node's documented
    payload encoding: metadata ``scale``, ``payload_bits``, ``signed``). The float weights of the layers that read
    the input include ``scale``, so feeding these equals feeding the integer payloads."""
    (node,) = [n for n in ir.nodes.values() if isinstance(n, nir.Input)]
    m = _meta(node)
    scale, (lo, hi) = float(m["scale"]), payload_range(int(m["payload_bits"]), bool(m["signed"]))
    return torch.clamp(torch.round(x.double() * scale), lo, hi) / scale


def run_file(path: Path, x: torch.Tensor, **options) -> ExecResult:
    """Read ``path`` with ``nir.read`` and run ``x`` through it (options as :class:`Executor`)."""
    try:
        ir = nir.read(str(path))
    except Exception as exc:  # h5py / nir raise many types for damaged files
        raise UserError(f"{path}: not a readable NIR file ({type(exc).__name__}: {exc})") from None
    return Executor(ir, **options).run(x)
