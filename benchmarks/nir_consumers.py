"""Which NIR consumer runs which exported file, and how close it comes to `snn-deploy simulate`.

Usage: python benchmarks/nir_consumers.py NETWORK.nir|BUNDLE [...] [--margins 0,0.5,0.9] [--bias-multiple 8]
       [--samples 355]

For each file (a bundle's ``network.nir``, e.g. from ``snn-deploy export demo-out/model.pt --target loihi2 -o b``;
models with 8x8 inputs, the digits data set), on the digits test set (inputs on the 8-bit payload grid):

1. every installed third-party importer (snnTorch, Norse, SpikingJelly, Sinabs, Rockpool) is asked to import the
   whole file with its own ``from_nir`` / ``import_from_nir``: loads or the error it raises, and what
   ``nir_consumers.lacks`` says it lacks;
2. the reference executor (``snn_deploy.exporters.nir.executor``, reading only the floats and the documented
   extension) runs the whole file with neurons from plain PyTorch and from each installed framework's node map:
   predictions equal to the integer simulator's (from the file's integer metadata), LIF spike entries that differ,
   largest logit difference;
3. with ``--margins``: the plain-PyTorch run of the same graph rewritten with other threshold margins;
4. with ``--bias-multiple N``: a design alternative, not what export does: every LIF bias rounded to a multiple of
   N integer voltage units (mantissa rounded, clipped to 13 bits), which makes Loihi's truncating decay exact for
   ``log2(N) + 1`` steps at dv = 2048 (currents are multiples of 2^6): the simulator's accuracy of that graph and
   the plain-PyTorch executor against it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import warnings
from pathlib import Path
from unittest import mock

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--margins", default="", help="threshold margins (integer voltage units) to compare")
    parser.add_argument("--bias-multiple", type=int, default=0, help="also measure biases rounded to multiples of "
                        "this many integer units (a power of two)")
    parser.add_argument("--samples", type=int, default=355)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    import nir

    from snn_deploy.data.digits import raw_digits, resample, split_indices
    from snn_deploy.exporters.nir import consumers as nir_consumers
    from snn_deploy.exporters.nir import executor as nir_executor
    from snn_deploy.exporters.nir import io as nir_io
    from snn_deploy.sims.backends.simulator import simulate

    for path in args.files:
        path = path / "network.nir" if path.is_dir() else path
        graph = nir_io.read(path)
        ir = nir.read(str(path))
        images, labels = raw_digits()
        x = resample(images[split_indices(labels)[1]], graph.input.shape[1])[:args.samples]
        reference = simulate(graph, x)
        y = torch.from_numpy(labels[split_indices(labels)[1]])[:len(x)]
        accuracy = float((reference.predictions == y).double().mean())
        print(f"\n{path}: {len(graph.nodes)} nodes, T={graph.T}, {len(x)} test digits, simulator accuracy "
              f"{100 * accuracy:.2f} %, threshold margin in file "
              f"{_margin_in_file(graph, ir, nir_io):.3f}")
        for tool, importer in nir_consumers.IMPORTERS.items():
            if importlib.util.find_spec(importer.module) is None:
                print(f"  {importer.label:20s} not installed")
                continue
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    importer.load(ir)
                outcome = "loads"
            except Exception as exc:
                outcome = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
            print(f"  {importer.label:20s} own importer {outcome}\n  {'':20s} lacks: "
                  f"{'; '.join(nir_consumers.lacks(ir, tool)) or 'nothing'}")
        grid = nir_executor.payload_grid(ir, x)
        for neurons in ("torch", "snntorch", "norse", "spikingjelly"):
            if neurons != "torch" and importlib.util.find_spec(neurons) is None:
                continue
            with contextlib.redirect_stdout(io.StringIO()):
                result = nir_executor.Executor(ir, neurons=neurons).run(grid)
            print(f"  executor, {neurons:12s} neurons: " + _compare(reference, result))
        for margin in (float(m) for m in args.margins.split(",") if m):
            with mock.patch.object(nir_io, "THRESHOLD_MARGIN", margin):
                rewritten = nir_io.to_nir(graph)
            result = nir_executor.Executor(rewritten).run(grid)
            print(f"  executor, margin {margin:.4f}:      " + _compare(reference, result))
        if args.bias_multiple:
            aligned = _biases_on_multiples(graph, args.bias_multiple)
            aligned_reference = simulate(aligned, x)
            result = nir_executor.Executor(nir_io.to_nir(aligned)).run(grid)
            accuracy = float((aligned_reference.predictions == y).double().mean())
            changed = int((aligned_reference.predictions != reference.predictions).sum())
            print(f"  biases on multiples of {args.bias_multiple}: simulator accuracy {100 * accuracy:.2f} %, "
                  f"predictions changed by the rounding {changed}; executor: " + _compare(aligned_reference, result))


def _biases_on_multiples(graph, multiple: int):
    """``graph`` with every LIF bias ``mant << exp`` rounded to a multiple of ``multiple`` integer units."""
    import dataclasses

    import numpy as np

    from snn_deploy.fixedpoint import limits as L
    from snn_deploy.graph import Graph, LIFNode

    shift = multiple.bit_length() - 1
    nodes = []
    for node in graph.nodes:
        if isinstance(node, LIFNode):
            mant, exp = np.broadcast_arrays(node.bias_mant.astype(np.int64), node.bias_exp.astype(np.int64))
            step = 1 << np.maximum(shift - exp, 0)
            lo, hi = L.BIAS_MANT_RANGE
            mant = np.clip(np.round(mant / step) * step, lo // step * step, hi // step * step).astype(np.int64)
            node = dataclasses.replace(node, bias_mant=mant, bias_exp=exp.copy())
        nodes.append(node)
    return Graph(nodes, T=graph.T, host=graph.host)


def _margin_in_file(graph, ir, nir_io) -> float:
    """The first LIF's float threshold in integer voltage units above ``vth 2^6`` (0 in files before the margin)."""
    node = next(n for n in graph.nodes if n.kind == "lif")
    return float(ir.nodes[node.name].v_threshold.flat[0]) * nir_io.float_scale(node.vth) - 64 * node.vth


def _compare(reference, result) -> str:
    same = int((result.predictions == reference.predictions).sum())
    flipped = sum(int((reference.spikes[k].bool() != result.spikes[k]).sum()) for k in reference.spikes)
    entries = sum(s.numel() for s in reference.spikes.values())
    diff = float((result.logits.double() - reference.logits).abs().max())
    return (f"predictions {same}/{len(reference.predictions)}, spike entries differing {flipped} of {entries}, "
            f"max |logit difference| {diff:.2e}")


if __name__ == "__main__":
    main()
