"""Agreement of imported NIR networks with the frameworks that wrote them (snnTorch, Norse, SpikingJelly, Sinabs).

Each framework builds the same small network (tests/framework_nets.py: conv 8x3x3 -> LIF -> Linear 512->10 -> LIF on
8x8 digits, readout fitted by least squares), exports it with its own NIR exporter, and snn-deploy imports it
(``nir_import.to_graph``, the path of ``snn-deploy export NET.nir``) and simulates it with the integer simulator.
Printed per spiking layer: the source's spike rate, the fraction of equal (neuron, step, sample) entries, the spike
IoU (spikes emitted by both over spikes emitted by either), the IoU when the layer reads the source's own spikes of
the layer before (its own arithmetic without propagated differences), and per network the prediction agreement
(class = the output layer's spike count) and both accuracies. The ``snntorch-rleaky`` row is the same network with a
recurrent output layer (``RLeaky``, all-to-all Linear loop: a recurrent synapse in the deployed graph).

Also the strided-conv row (the issue's lone 6x6 stride-2 convs between IF layers, read neuron by neuron) and the
pool->conv row: Sinabs's pooling CNN (``framework_nets.sinabs_pool_net``: SumPool2d then Conv2d) imported
as one strided convolution (after) and as the full-map kernel the import built before (``framework_nets.as_dense``):
Loihi 2 cores and chips, synapses (non-zero weights of the layer), synaptic operations per sample, and whether every
layer's spikes are identical.

    python benchmarks/nir_frameworks.py [--samples N] [--steps T] [--json out.json] [--write DIR]

``--write DIR`` also saves each framework's file (``DIR/snntorch_net.nir``, ...) with the ``--dt`` to export it
with, for the README's command: ``snn-deploy export DIR/snntorch_net.nir --target loihi --calibrate digits -o b &&
snn-deploy simulate b --dataset digits``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
from pathlib import Path

import nir
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import framework_nets as fn  # noqa: E402

from snn_deploy.exporters.nir import importer as nir_import  # noqa: E402

SCHEMA = 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=None, help="Test digits (default: all 355).")
    parser.add_argument("--steps", type=int, default=fn.STEPS, help="Time steps per sample.")
    parser.add_argument("--json", type=Path, help="Also write the figures as JSON.")
    parser.add_argument("--write", type=Path, metavar="DIR", help="Also save each framework's NIR file here.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    fit = fn.digits("train", fn.FIT_SAMPLES)
    x, y = fn.digits("test", args.samples)
    rows, skipped = [], []
    for framework in (*fn.FRAMEWORKS, *fn.RECURRENT):
        package = framework.split("-")[0]
        if importlib.util.find_spec(package) is None:
            skipped.append(f"{framework} ({package} not installed)")
            continue
        start = time.perf_counter()
        net = fn.build(framework, fit, args.steps)
        graph, _ = nir_import.to_graph(net.ir, dt=net.dt, steps=args.steps, calibration=fit[0])
        if args.write:
            args.write.mkdir(parents=True, exist_ok=True)
            nir.write(str(args.write / f"{framework.replace('-', '_')}_net.nir"), net.ir)
            print(f"wrote {args.write / (framework.replace('-', '_') + '_net.nir')} (export with --dt {net.dt:g})",
                  file=sys.stderr)
        rows.append(fn.compare(net, graph, x, y))
        print(f"{framework}: exported, imported (dt = {net.dt:g} s), simulated in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)
    print(f"NIR import vs source framework: {len(x)} test digits, T = {args.steps}, inputs on the 8-bit grid")
    print(fn.table(rows))
    strided = strided_row()
    print(f"strided conv (2 -> 4 -> 8 channels, 6x6 stride 2, 16x16, Loihi 2): cores {strided['cores_before']} -> "
          f"{strided['cores_after']}, synapses {strided['synapses_before']} -> {strided['synapses_after']}, "
          f"identical spikes on every layer: {strided['identical_spikes']}")
    pool = pool_row(fit, x, args.steps) if importlib.util.find_spec("sinabs") else None
    if pool:
        print(f"pool->conv (sinabs-pool, Loihi 2): cores {pool['cores_before']} -> {pool['cores_after']}, chips "
              f"{pool['chips_before']} -> {pool['chips_after']}, synapses {pool['synapses_before']} -> "
              f"{pool['synapses_after']}, synaptic ops per sample {pool['sops_before']:.0f} -> "
              f"{pool['sops_after']:.0f}, identical spikes on every layer: {pool['identical_spikes']}")
    if skipped:
        print("skipped: " + ", ".join(skipped))
    if args.json:
        args.json.write_text(json.dumps({"schema_version": SCHEMA, "samples": len(x), "steps": args.steps,
                                         "rows": [dataclasses.asdict(r) for r in rows], "pool_conv": pool,
                                         "strided_conv": strided}, indent=2))


def pool_row(fit, x: torch.Tensor, steps: int) -> dict:
    """Cores, chips, synapses, synaptic ops per sample and spike equality of the pool->conv network, before (full-map
    kernel) and after (one strided conv)."""
    net = fn.sinabs_pool_net(fit, steps)
    after, _ = nir_import.to_graph(net.ir, dt=net.dt, steps=steps, calibration=fit[0])
    return _before_after(after, after[net.layers[1]].inputs[0], x)


def strided_row() -> dict:
    """The same for the issue's lone strided convs (``framework_nets.strided_conv_net``: the output reads the last
    layer neuron by neuron, which made its conv a full-map kernel), on random inputs."""
    graph, _ = nir_import.to_graph(fn.strided_conv_net(2), dt=1.0, steps=fn.STEPS)
    return _before_after(graph, "conv2", torch.rand(64, 2, 16, 16, generator=torch.Generator().manual_seed(0)))


def _before_after(after, conv: str, x: torch.Tensor) -> dict:
    from snn_deploy.graph import LIFNode, profile
    from snn_deploy.sims.hardware.mapper import map_graph
    from snn_deploy.sims.backends.simulator import simulate

    row = {}
    runs = {}
    for when, graph in (("before", fn.as_dense(after, conv)), ("after", after)):
        mapping = map_graph(graph, profile("loihi2"))
        runs[when] = simulate(graph, x)
        row[f"cores_{when}"], row[f"chips_{when}"] = len(mapping.cores), mapping.chips
        row[f"synapses_{when}"] = sum(layer.synapses for layer in mapping.layers.values())
        row[f"sops_{when}"] = sum(float(v.sum()) for v in runs[when].synaptic_ops.values()) / len(x)
    row["identical_spikes"] = all(torch.equal(runs["before"].spikes[n.name].flatten(2),
                                              runs["after"].spikes[n.name].flatten(2)) for n in after.of_kind(LIFNode))
    return row


if __name__ == "__main__":
    main()
