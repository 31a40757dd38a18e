"""Agreement of imported NIR networks with the frameworks that wrote them (snnTorch, Norse, SpikingJelly, Sinabs).

Each framework builds the same small network (tests/framework_nets.py: conv 8x3x3 -> LIF -> Linear 512->10 -> LIF on
8x8 digits, readout fitted by least squares), exports it with its own NIR exporter, and snn-deploy imports it
(``nir_import.to_graph``, the path of ``snn-deploy export NET.nir``) and simulates it with the integer simulator.
Printed per spiking layer: the source's spike rate, the fraction of equal (neuron, step, sample) entries, the spike
IoU (spikes emitted by both over spikes emitted by either), the IoU when the layer reads the source's own spikes of
the layer before (its own arithmetic without propagated differences), and per network the prediction agreement
(class = the output layer's spike count) and both accuracies. The ``snntorch-rleaky`` row is the same network with a
recurrent output layer (``RLeaky``, all-to-all Linear loop: a recurrent synapse in the deployed graph).

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
    if skipped:
        print("skipped: " + ", ".join(skipped))
    if args.json:
        args.json.write_text(json.dumps({"schema_version": SCHEMA, "samples": len(x), "steps": args.steps,
                                         "rows": [dataclasses.asdict(r) for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
