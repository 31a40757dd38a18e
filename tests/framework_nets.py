"""Small networks built in snnTorch, Norse, SpikingJelly and Sinabs, exported with each tool's own NIR exporter, and the
source framework's own forward pass: the reference for snn-deploy's NIR import (tests/test_nir_import.py,
benchmarks/nir_frameworks.py).

Every network is ``Conv2d(1, 8, 3, padding=1) -> LIF -> Flatten -> Linear(512, 10) -> LIF`` on 8x8 digits:
the conv is random (seeded, scaled so that about a tenth of its neurons fire), the Linear readout is fitted by
least squares on the conv layer's spike counts over training digits (a few milliseconds, no backpropagation), and
the class is the output layer's spike count. Decays are 1/8 per step (``beta = 0.875``, ``tau = 8`` steps), which
Loihi's 12-bit decay holds exactly (``dv = 512``).

How each tool's exporter is driven (nir 1.0.8, nirtorch 2.6):

* snnTorch 1.0.0: ``export_to_nir(net, sample, ignore_dims=[0])`` with per-neuron ``beta`` and ``threshold``
  tensors. With scalar ``beta`` the LIF nodes get shape ``[]`` and nir's type check fails ("type mismatch:
  0.output: [[4 8 8]] -> 1.input: []"); without ``ignore_dims=[0]`` the batch dimension reaches the conv's shape
  inference (IndexError). ``reset_mechanism="zero"``: the exporter writes ``v_reset = 0`` whatever the mechanism,
  and snnTorch's default (subtract) is not what the file says.
* Norse 1.1.0: ``norse.to_nir`` has no mapping for ``Flatten`` (it writes ``None`` nodes) and keeps the batch in
  the input shape, so the graph is assembled here from Norse's own per-module exporter
  (``norse.torch.utils.export_nir._extract_norse_module``) plus ``nir.Flatten``, exactly as ``to_nir`` would.
  Norse writes ``tau = dt / tau_mem_inv`` (not ``1 / tau_mem_inv``), so its file describes Norse's step under
  NIR's forward Euler at ``dt' = dt^2``: import with ``dt = 1e-6`` for Norse's default ``dt = 1e-3``.
  ``LIFCell`` adds its input to the current with weight 1 where NIR's CubaLIF (and Norse's own importer) has
  ``dt/tau_syn``: the same only for ``tau_syn = dt`` (used here: a current without memory).
* SpikingJelly 2.0.0: ``nir_exchange.export_to_nir(net, sample)`` works as is (LIFNode with ``decay_input``,
  IFNode). It fires on ``v >= threshold`` where Loihi fires on ``v > vth``.
* Sinabs 3.1.3 (declares nir <= 1.0.4; run here on nir 1.0.8): ``sinabs.to_nir`` works once the network has run
  (its neurons size their state on the first call) and leaves torch tensors in the nodes, converted here for
  ``nir.write``. ``IAF`` with ``SingleSpike`` and ``MembraneReset``; it fires on ``v >= threshold``.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Callable

import nir
import numpy as np
import torch

from snn_deploy.agreement import agreement

CHANNELS, CLASSES, SIDE = 8, 10, 8
DECAY = 0.125
"""dt / tau of every LIF: 1 - beta for snnTorch, 1/tau for SpikingJelly, dt tau_mem_inv for Norse."""
STEPS = 16
FIT_SAMPLES = 512
FRAMEWORKS = ("snntorch", "norse-lifbox", "norse-lif", "spikingjelly-lif", "spikingjelly-if", "sinabs-iaf")
RECURRENT = ("snntorch-rleaky",)
"""Networks whose output layer is recurrent (snnTorch ``RLeaky``: Norse 1.1.0 and SpikingJelly 2.0.0 cannot export
recurrence, tests/test_recurrent.py)."""


@dataclass
class SourceNet:
    """A network in its framework, its NIR export, and how to run it."""

    framework: str
    ir: nir.NIRGraph
    run: Callable[[torch.Tensor, int], list[torch.Tensor]]
    """(x [B, 1, 8, 8], steps) -> spikes per spiking layer in order, each [T, B, n] (float 0/1)."""
    layers: list[str]
    """NIR node names of the spiking layers, in order."""
    dt: float
    """The step to import the file with (the framework's convention, see the module docstring)."""
    lag: list[int] = field(default_factory=list)
    """Per layer: steps the source's spikes trail Loihi's (Norse LIFCell: one per CubaLIF on the path)."""


def digits(split: str, count: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """8x8 digits in [0, 1] on the 8-bit input grid (``round(255 x) / 255``: both sides see the same input)."""
    from snn_deploy.data.digits import open_digits

    samples = getattr(open_digits(SIDE), split)
    n = len(samples) if count is None else min(count, len(samples))
    x = torch.stack([samples.sample(i, None) for i in range(n)])
    return torch.round(x * 255) / 255, samples.labels[:n].clone()


def conv_parameters(seed: int = 0, input_gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The random conv, divided by the neuron's input gain (1/tau for Norse and SpikingJelly's decay_input) so that
    every framework's first layer sees the same drive."""
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(CHANNELS, 1, 3, 3, generator=g) * 0.35
    bias = torch.randn(CHANNELS, generator=g) * 0.02
    return weight / input_gain, bias / input_gain


def fit_readout(counts: torch.Tensor, labels: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares Linear(512, 10) from the conv layer's spike rates to a per-step drive of 0.4 for the class."""
    rates = counts.reshape(len(counts), -1).double() / steps
    features = torch.cat([rates, torch.ones(len(rates), 1, dtype=torch.float64)], 1)
    target = torch.nn.functional.one_hot(labels, CLASSES).double() * 0.4
    ridge = 1.0 * torch.eye(features.shape[1], dtype=torch.float64)
    solution = torch.linalg.solve(features.T @ features + ridge, features.T @ target)
    return solution[:-1].T.float().contiguous(), solution[-1].float().contiguous()


def _quiet():
    warnings.simplefilter("ignore")
    return contextlib.redirect_stdout(io.StringIO())


# --- snnTorch --------------------------------------------------------------------------------------------------------

def snntorch_net(fit: tuple[torch.Tensor, torch.Tensor], steps: int = STEPS, seed: int = 0,
                 recurrent: bool = False) -> SourceNet:
    """``recurrent``: the output layer is an ``RLeaky`` with an all-to-all Linear(10, 10) loop (seeded, about the
    scale of the readout), which snnTorch exports as the flat cycle ``4.lif -> 4.w_rec -> 4.lif``."""
    import snntorch as snn
    from snntorch import utils as snn_utils
    from snntorch.export_nir import export_to_nir

    delay = {"reset_delay": False} if recurrent else {}

    def leaky(shape, output=False):  # the recurrent network resets without snnTorch's one-step delay, as Loihi does
        return snn.Leaky(beta=torch.full(shape, 1 - DECAY), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero", output=output, **delay)

    conv = torch.nn.Conv2d(1, CHANNELS, 3, padding=1)
    linear = torch.nn.Linear(CHANNELS * SIDE * SIDE, CLASSES)
    with torch.no_grad():
        conv.weight[:], conv.bias[:] = conv_parameters(seed)
    last = leaky((CLASSES,), output=True)
    if recurrent:
        g = torch.Generator().manual_seed(seed + 1)
        last = snn.RLeaky(beta=torch.full((CLASSES,), 1 - DECAY), threshold=torch.ones(CLASSES), init_hidden=True,
                          reset_mechanism="zero", output=True, linear_features=CLASSES, **delay)
        with torch.no_grad():
            last.recurrent.weight[:] = torch.randn(CLASSES, CLASSES, generator=g) * 0.2
            last.recurrent.bias[:] = torch.randn(CLASSES, generator=g) * 0.02
    net = torch.nn.Sequential(conv, leaky((CHANNELS, SIDE, SIDE)), torch.nn.Flatten(), linear, last)

    def run(x: torch.Tensor, t: int) -> list[torch.Tensor]:
        recorded: list[list[torch.Tensor]] = [[], []]
        snn_utils.reset(net)
        with torch.no_grad():
            for _ in range(t):
                h = net[1](net[0](x))
                recorded[0].append(h.flatten(1))
                recorded[1].append(net[4](net[3](net[2](h)))[0])
        return [torch.stack(r) for r in recorded]

    _fit(net[3], run, fit, steps)
    with _quiet():
        ir = export_to_nir(net, torch.zeros(1, 1, SIDE, SIDE), ignore_dims=[0])
    return SourceNet("snntorch-rleaky" if recurrent else "snntorch", ir, run, ["1", "4.lif" if recurrent else "4"],
                     dt=1e-4, lag=[0, 0])


def _fit(linear: torch.nn.Linear, run, fit: tuple[torch.Tensor, torch.Tensor], steps: int,
         input_gain: float = 1.0) -> None:
    """Set the readout from the conv layer's spikes; divided by the output neuron's input gain (see conv_parameters)."""
    x, y = fit
    counts = run(x, steps)[0].sum(0)
    weight, bias = fit_readout(counts, y, steps)
    with torch.no_grad():
        linear.weight[:], linear.bias[:] = weight / input_gain, bias / input_gain


# --- Norse -----------------------------------------------------------------------------------------------------------

NORSE_DT = 1e-3
"""Norse's default step; its files import at ``dt = NORSE_DT ** 2`` (see the module docstring)."""


def norse_net(fit: tuple[torch.Tensor, torch.Tensor], cell: str = "lifbox", steps: int = STEPS,
              seed: int = 0) -> SourceNet:
    import norse.torch as norse
    from norse.torch.utils.export_nir import _extract_norse_module

    def neuron(shape):  # per-neuron parameters: scalar ones export as shape [] and fail nir's type check
        full = lambda value: torch.full(shape, float(value))  # noqa: E731
        common = dict(tau_mem_inv=full(DECAY / NORSE_DT), v_th=full(1), v_leak=full(0), v_reset=full(0))
        if cell == "lifbox":
            return norse.LIFBoxCell(norse.LIFBoxParameters(**common), dt=NORSE_DT)
        return norse.LIFCell(norse.LIFParameters(**common, tau_syn_inv=full(1 / NORSE_DT)), dt=NORSE_DT)

    conv = torch.nn.Conv2d(1, CHANNELS, 3, padding=1)
    linear = torch.nn.Linear(CHANNELS * SIDE * SIDE, CLASSES)
    with torch.no_grad():
        conv.weight[:], conv.bias[:] = conv_parameters(seed, DECAY)
    lif1, lif2 = neuron((CHANNELS, SIDE, SIDE)), neuron((CLASSES,))

    def run(x: torch.Tensor, t: int) -> list[torch.Tensor]:
        s1 = s2 = None
        out: list[list[torch.Tensor]] = [[], []]
        with torch.no_grad():
            for _ in range(t):
                z1, s1 = lif1(conv(x), s1)
                z2, s2 = lif2(linear(z1.flatten(1)), s2)
                out[0].append(z1.flatten(1))
                out[1].append(z2)
        return [torch.stack(o) for o in out]

    _fit(linear, run, fit, steps, DECAY)
    modules = {"conv": conv, "lif1": lif1, "linear": linear, "lif2": lif2}
    nodes = {"input": nir.Input(input_type={"input": np.array([1, SIDE, SIDE])})}
    for name, module in modules.items():
        node = _extract_norse_module(module, dt=NORSE_DT)
        nodes[name] = _numpy_fields(node)
    nodes["conv"].input_shape = (SIDE, SIDE)
    nodes["flatten"] = nir.Flatten(input_type={"input": np.array([CHANNELS, SIDE, SIDE])}, start_dim=0, end_dim=-1)
    nodes["output"] = nir.Output(output_type={"output": np.array([CLASSES])})
    order = ["input", "conv", "lif1", "flatten", "linear", "lif2", "output"]
    ir = nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])))
    return SourceNet(f"norse-{cell}", ir, run, ["lif1", "lif2"], dt=NORSE_DT ** 2, lag=[0, 0])


def _numpy_fields(node: nir.NIRNode) -> nir.NIRNode:
    """Norse's exporter leaves torch tensors in the node; nir.write needs arrays (``to_nir`` has the same)."""
    for key, value in vars(node).items():
        if isinstance(value, torch.Tensor):
            setattr(node, key, value.detach().numpy())
    return node


# --- SpikingJelly ----------------------------------------------------------------------------------------------------

def spikingjelly_net(fit: tuple[torch.Tensor, torch.Tensor], output_neuron: str = "lif", steps: int = STEPS,
                     seed: int = 0) -> SourceNet:
    with _quiet():
        from spikingjelly.activation_based import functional, layer, neuron
        from spikingjelly.activation_based.nir_exchange import export_to_nir

    conv = layer.Conv2d(1, CHANNELS, 3, padding=1)
    linear = layer.Linear(CHANNELS * SIDE * SIDE, CLASSES)
    with torch.no_grad():
        conv.weight[:], conv.bias[:] = conv_parameters(seed, DECAY)
    last = neuron.LIFNode(tau=1 / DECAY) if output_neuron == "lif" else neuron.IFNode()
    net = torch.nn.Sequential(conv, neuron.LIFNode(tau=1 / DECAY), layer.Flatten(), linear, last)

    def run(x: torch.Tensor, t: int) -> list[torch.Tensor]:
        functional.reset_net(net)
        out: list[list[torch.Tensor]] = [[], []]
        with torch.no_grad():
            for _ in range(t):
                h = net[1](net[0](x))
                out[0].append(h.flatten(1))
                out[1].append(net[4](net[3](net[2](h))))
        return [torch.stack(o) for o in out]

    _fit(linear, run, fit, steps, DECAY if output_neuron == "lif" else 1.0)
    with _quiet():
        ir = export_to_nir(net, torch.zeros(1, 1, SIDE, SIDE))
        functional.reset_net(net)
    names = [n for n, node in ir.nodes.items() if isinstance(node, (nir.LIF, nir.IF))]
    return SourceNet(f"spikingjelly-{output_neuron}", ir, run, names, dt=1e-4, lag=[0, 0])


# --- Sinabs ----------------------------------------------------------------------------------------------------------

def sinabs_net(fit: tuple[torch.Tensor, torch.Tensor], steps: int = STEPS, seed: int = 0) -> SourceNet:
    """``IAF`` neurons with one spike per step and reset to 0 (sinabs's defaults, several spikes per step and reset
    by subtraction, are not Loihi's). Sinabs writes ``IF(r = 1)`` and integrates ``v += I``: import at ``dt = 1``."""
    with _quiet():
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike

    options = dict(spike_fn=SingleSpike, reset_fn=MembraneReset())
    conv = torch.nn.Conv2d(1, CHANNELS, 3, padding=1)
    linear = torch.nn.Linear(CHANNELS * SIDE * SIDE, CLASSES)
    with torch.no_grad():
        conv.weight[:], conv.bias[:] = conv_parameters(seed)
    lif1, lif2 = sl.IAF(**options), sl.IAF(**options)

    def run(x: torch.Tensor, t: int) -> list[torch.Tensor]:  # sinabs runs [B, T, ...]
        lif1.reset_states()
        lif2.reset_states()
        frames = x[:, None].expand(len(x), t, *x.shape[1:]).flatten(0, 1)
        with torch.no_grad():
            z1 = lif1(conv(frames).reshape(len(x), t, CHANNELS, SIDE, SIDE))
            z2 = lif2(linear(z1.flatten(2)))
        return [z1.transpose(0, 1).flatten(2), z2.transpose(0, 1)]

    _fit(linear, run, fit, steps)
    net = torch.nn.Sequential(conv, sl.IAFSqueeze(batch_size=1, **options), torch.nn.Flatten(), linear,
                              sl.IAFSqueeze(batch_size=1, **options))
    with _quiet(), torch.no_grad():
        net(torch.zeros(1, 1, SIDE, SIDE))  # sinabs sizes its neuron state on the first call; to_nir reads it
        ir = sinabs.to_nir(net, torch.zeros(1, 1, SIDE, SIDE))
    ir = nir.NIRGraph(nodes={k: _numpy_fields(v) for k, v in ir.nodes.items()}, edges=ir.edges)
    return SourceNet("sinabs-iaf", ir, run, ["1", "4"], dt=1.0, lag=[0, 0])


POOL_CHANNELS = 16
"""Channels of the pool network's second conv (``sinabs_pool_net``)."""


def sinabs_pool_net(fit: tuple[torch.Tensor, torch.Tensor], steps: int = STEPS, seed: int = 0) -> SourceNet:
    """The pooling CNN as Sinabs writes it (its N-MNIST examples' form): ``Conv2d(1, 8, 3, padding=1) -> IAF ->
    SumPool2d(2) -> Conv2d(8, 16, 3, padding=1) -> IAF -> Flatten -> Linear(256, 10) -> IAF`` on 8x8 digits, the
    readout fitted on the second layer's spikes. The pool and the conv after it compose into one 6x6 stride-2
    convolution (padding 2), which the import keeps as a conv."""
    with _quiet():
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike

    options = dict(spike_fn=SingleSpike, reset_fn=MembraneReset())
    g = torch.Generator().manual_seed(seed + 1)
    conv1 = torch.nn.Conv2d(1, CHANNELS, 3, padding=1)
    conv2 = torch.nn.Conv2d(CHANNELS, POOL_CHANNELS, 3, padding=1)
    linear = torch.nn.Linear(POOL_CHANNELS * (SIDE // 2) ** 2, CLASSES)
    with torch.no_grad():
        conv1.weight[:], conv1.bias[:] = conv_parameters(seed)
        conv2.weight[:] = torch.randn(conv2.weight.shape, generator=g) * 0.12
        conv2.bias[:] = 0
    lifs = [sl.IAF(**options) for _ in range(3)]
    pool = sl.SumPool2d(2)

    def run(x: torch.Tensor, t: int) -> list[torch.Tensor]:  # sinabs runs [B, T, ...]
        for lif in lifs:
            lif.reset_states()
        frames = x[:, None].expand(len(x), t, *x.shape[1:]).flatten(0, 1)
        with torch.no_grad():
            z1 = lifs[0](conv1(frames).reshape(len(x), t, CHANNELS, SIDE, SIDE))
            h = conv2(pool(z1.flatten(0, 1)))
            z2 = lifs[1](h.reshape(len(x), t, *h.shape[1:]))
            z3 = lifs[2](linear(z2.flatten(2)))
        return [z.transpose(0, 1).flatten(2) for z in (z1, z2, z3)]

    def counts_run(x: torch.Tensor, t: int) -> list[torch.Tensor]:
        return run(x, t)[1:]

    _fit(linear, counts_run, fit, steps)
    net = torch.nn.Sequential(conv1, sl.IAFSqueeze(batch_size=1, **options), pool, conv2,
                              sl.IAFSqueeze(batch_size=1, **options), torch.nn.Flatten(), linear,
                              sl.IAFSqueeze(batch_size=1, **options))
    with _quiet(), torch.no_grad():
        net(torch.zeros(1, 1, SIDE, SIDE))
        ir = sinabs.to_nir(net, torch.zeros(1, 1, SIDE, SIDE))
    ir = nir.NIRGraph(nodes={k: _numpy_fields(v) for k, v in ir.nodes.items()}, edges=ir.edges)
    layers = [n for n, node in ir.nodes.items() if isinstance(node, nir.IF)]
    return SourceNet("sinabs-pool", ir, run, sorted(layers, key=int), dt=1.0, lag=[0, 0, 0])


def as_dense(graph, conv: str):
    """``graph`` with conv node ``conv`` as the equivalent full-map kernel, its LIF laid out as a vector (n, 1, 1),
    and that LIF's readers re-laid out to read the vector: what the NIR import built for a pool before a conv
    until it composed them into one strided convolution (the "before" of benchmarks/nir_frameworks.py)."""
    import dataclasses

    import torch.nn.functional as F

    from snn_deploy.graph import ConvNode, Graph, LIFNode, ReadoutNode

    node = graph[conv]
    lif = next(n for n in graph.nodes if isinstance(n, LIFNode) and conv in n.inputs)
    c_in, h_in, w_in = graph[node.inputs[0]].shape
    n_in, n_out = c_in * h_in * w_in, int(np.prod(node.shape))
    basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, c_in, h_in, w_in)
    full = F.conv2d(basis, torch.from_numpy(node.weight.astype(np.float64)), stride=node.stride,
                    padding=node.padding, groups=node.groups)
    matrix = full.reshape(n_in, n_out).T.round().numpy().astype(np.int64)
    vector = (n_out, 1, 1)
    nodes = []
    for n in graph.nodes:
        if n is node:
            n = dataclasses.replace(n, shape=vector, weight=matrix.reshape(n_out, c_in, h_in, w_in), stride=(1, 1),
                                    padding=(0, 0), groups=1)
        elif n is lif:
            per = n_out // len(np.atleast_1d(n.bias_mant))
            n = dataclasses.replace(n, shape=vector, bias_mant=np.repeat(np.atleast_1d(n.bias_mant), per),
                                    bias_exp=np.repeat(np.atleast_1d(n.bias_exp), per))
        elif isinstance(n, ConvNode) and n.inputs[0] == lif.name:
            n = dataclasses.replace(n, weight=n.dense_kernel().reshape(len(n.weight), n_out, 1, 1))
            assert n.weight.shape[1:] == (n_out, 1, 1), "a reader of the pooled layer is not a full-map kernel"
        elif isinstance(n, ReadoutNode) and n.inputs[0] == lif.name:
            weight = n.weight if n.per_neuron else np.repeat(n.weight, n_out // n.weight.shape[1], 1) / (
                n_out // n.weight.shape[1])
            n = dataclasses.replace(n, shape=vector, weight=weight)
        nodes.append(n)
    return Graph(nodes, T=graph.T)


def strided_conv_net(pad: int, *, pool: dict | None = None) -> nir.NIRGraph:
    """The issue's lone strided convs, written directly in NIR: Input (2, 16, 16) -> Conv 2->4 6x6 stride 2 (padding
    ``pad``) -> IF -> [SumPool2d(**pool) ->] Conv 4->8 6x6 stride 2 -> IF -> Output (identity: read per neuron)."""
    rng = np.random.default_rng(0)
    side = (16 + 2 * pad - 6) // 2 + 1
    nodes = {"input": nir.Input(input_type={"input": np.array([2, 16, 16])}),
             "conv1": nir.Conv2d(input_shape=(16, 16), weight=rng.normal(0, 0.3, (4, 2, 6, 6)), stride=2,
                                 padding=pad, dilation=1, groups=1, bias=np.zeros(4)),
             "if1": nir.IF(r=np.ones((4, side, side)), v_threshold=np.ones((4, side, side)))}
    edges = [("input", "conv1"), ("conv1", "if1")]
    last = "if1"
    if pool:
        nodes["pool"] = nir.SumPool2d(**pool)
        edges.append(("if1", "pool"))
        last = "pool"
        side = (side + 2 * int(pool["padding"][0]) - int(pool["kernel_size"][0])) // int(pool["stride"][0]) + 1
    out = (side + 2 * pad - 6) // 2 + 1
    nodes["conv2"] = nir.Conv2d(input_shape=(side, side), weight=rng.normal(0, 0.3, (8, 4, 6, 6)), stride=2,
                                padding=pad, dilation=1, groups=1, bias=np.zeros(8))
    nodes["if2"] = nir.IF(r=np.ones((8, out, out)), v_threshold=np.ones((8, out, out)))
    nodes["output"] = nir.Output(output_type={"output": np.array([8, out, out])})
    edges += [(last, "conv2"), ("conv2", "if2"), ("if2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def build(framework: str, fit: tuple[torch.Tensor, torch.Tensor], steps: int = STEPS) -> SourceNet:
    if framework in ("snntorch", "snntorch-rleaky"):
        return snntorch_net(fit, steps, recurrent=framework == "snntorch-rleaky")
    if framework.startswith("norse-"):
        return norse_net(fit, framework.split("-", 1)[1], steps)
    if framework == "sinabs-iaf":
        return sinabs_net(fit, steps)
    if framework == "sinabs-pool":
        return sinabs_pool_net(fit, steps)
    if framework.startswith("spikingjelly"):
        return spikingjelly_net(fit, framework.split("-", 1)[1] if "-" in framework else "lif", steps)
    raise ValueError(framework)


# --- agreement -------------------------------------------------------------------------------------------------------

@dataclass
class Agreement:
    framework: str
    layers: list[tuple[str, float, float, float]]
    """(layer, source rate, per-entry agreement, spike IoU) per spiking layer."""
    forced: list[float]
    """Per spiking layer: its spike IoU when it reads the source's own spikes of the layer before (teacher forcing;
    the first layer reads the image either way): the layer's own arithmetic, without propagated differences."""
    predictions: float
    """Fraction of samples where both predict the same class (the output layer's spike count, first maximum)."""
    accuracy_source: float
    accuracy_deployed: float
    samples: int


def simulate(graph, x: torch.Tensor):
    """snn-deploy's integer simulator (the reference every backend is checked against)."""
    from snn_deploy.sims.backends.simulator import simulate as run

    return run(graph, x)


def compare(net: SourceNet, graph, x: torch.Tensor, y: torch.Tensor) -> Agreement:
    """Run the source network and the imported graph (snn-deploy's integer simulator) on the same inputs."""
    source = net.run(x, graph.T)
    result = simulate(graph, x)
    rows = []
    for name, lag, ref in zip(net.layers, net.lag, source):
        ours = result.spikes[name].reshape(graph.T, len(x), -1).bool()[:graph.T - lag]
        ref = ref.reshape(graph.T, len(x), -1).bool()[lag:]  # a source that trails by `lag` steps
        rows.append((name, ref.float().mean().item(), agreement(ours, ref).fraction, _iou(ours, ref)))
    forced = [rows[0][3]] + [_iou(result_k, ref) for result_k, ref in
                             ((_forced(graph, name, prev, x), src) for name, prev, src in
                              zip(net.layers[1:], source, source[1:]))]
    last = net.layers[-1]
    lag = net.lag[-1]
    ours = result.spikes[last].reshape(graph.T, len(x), -1)[:graph.T - lag].sum(0)
    ref = source[-1].reshape(graph.T, len(x), -1)[lag:].sum(0)
    pred_ours, pred_ref = _first_max(ours), _first_max(ref)
    return Agreement(net.framework, rows, forced, (pred_ours == pred_ref).double().mean().item(),
                     (pred_ref == y).double().mean().item(), (pred_ours == y).double().mean().item(), len(x))


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spikes emitted by both over spikes emitted by either, from :func:`snn_deploy.agreement.agreement` (for 0/1
    spikes the mismatches are the symmetric difference)."""
    result = agreement(a.reshape(b.shape).bool(), b.bool())
    both = (sum(result.spikes) - result.mismatches) // 2
    union = sum(result.spikes) - both
    return both / union if union else 1.0


def _forced(graph, name: str, previous: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Spikes [T, B, ...] of LIF ``name`` simulated alone on the source's spikes of the layer before (the payload of
    an input node with scale 1: spikes are 0 / 1 either way)."""
    import dataclasses

    import numpy as np

    from snn_deploy.graph import Graph, InputNode, ReadoutNode

    lif = graph[name]
    convs = [dataclasses.replace(graph[c], graded=True) for c in lif.inputs]
    source = graph[convs[0].inputs[0]]
    nodes = [InputNode(source.name, (), source.shape, scale=1.0), *convs, lif, *graph.recurrent_synapses(name),
             ReadoutNode("forced.readout", (name,), lif.shape, weight=np.eye(lif.shape[0]), bias=np.zeros(lif.shape[0]))]
    spikes = previous.reshape(graph.T, len(x), *source.shape)
    return simulate(Graph(nodes, T=graph.T), spikes).spikes[name]


def _first_max(counts: torch.Tensor) -> torch.Tensor:
    return counts.double().argmax(1)  # ties: the first maximum (documented for torch.argmax)


def table(rows: list[Agreement]) -> str:
    lines = [f"{'framework':18s} {'layer':6s} {'rate':>7s} {'agreement':>10s} {'spike IoU':>10s} {'forced IoU':>10s} "
             f"{'predictions':>12s} {'acc src':>8s} {'acc ours':>8s}"]
    for a in rows:
        for i, ((layer, rate, agree, iou), forced) in enumerate(zip(a.layers, a.forced)):
            tail = (f" {a.predictions:12.4f} {a.accuracy_source:8.4f} {a.accuracy_deployed:8.4f}"
                    if i == len(a.layers) - 1 else "")
            lines.append(f"{a.framework:18s} {layer:6s} {rate:7.4f} {agree:10.6f} {iou:10.6f} {forced:10.6f}{tail}")
    return "\n".join(lines)
