"""How far Lava goes with the Loihi 2 network snn-deploy builds: processes, their classes, time, peak memory and
spike-exactness against the simulator on every LIF layer and step.

    python benchmarks/lava_scale.py [--configs NAME,...] [--steps 4] [--limit-s 900] [--json FILE]

Per configuration (``mode`` "whole": the whole network in one Lava runtime): the model is built with random
weights (seed 0) and batch norms drawn so that every layer spikes (weights U(1, 3), biases U(0, 1.2), as the Lava
tests do), quantized and lowered as ``export --target loihi2`` does (QKFormer with ``--rewrite
maxpool-after-lif``), simulated, then built with ``sims/backends/lava_build.py`` and run on 1 random sample at
``--steps`` steps. ``peak_rss_gb`` is the largest sum of the proportional resident memory (PSS: Lava's workers
are forked and share the parent's pages, which plain RSS would count once per worker) of this process and all
its descendants, sampled every 0.5 s while Lava compiles and runs. ``layers_compared`` counts LIF layers,
``layers_exact`` those whose spikes equal the simulator's on every step. A Lava call without progress for
``--limit-s`` ends the run (the project's watchdog), and the row says so in ``error``. Timings depend on the machine's load: this machine has 2 cores shared with other jobs.

JSON keys (fixed): ``{"configs": [{"name", "mode", "processes", "process_types", "non_chip_types", "peak_rss_gb",
"wall_s", "layers_compared", "layers_exact"}]}`` plus ``error`` where a run did not finish. Per-layer mode
(``--per-layer NAME,...``, ``verify --per-layer``) runs each LIF layer alone, driven by the simulator's spikes,
until ``--budget-s``; ``processes`` then counts every layer's processes and ``layers_total`` says how many layers
the network has.

Measured (2026-12-04, this 2-core machine shared with other jobs; docs/lava_chip.md has the table and how the
time was found): whole, spikformer-cifar10-4-384 165 processes 51.8 s 4.51 GB 35/35 exact, qkformer-cifar10-4-384
169 processes 76.5 s 6.23 GB 39/39, the three tiny families 6-11 s and at most 1.4 GB, all exact, no non-chip
class; per layer, spikformer-8-384 at 224 px all 65 layers in 195.4 s, 7.17 GB, 65/65. Before the fast CPU models
and 2-message channels, spikformer-cifar10-4-384 whole gave no answer within 900 s at 6.0 GB.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

import torch

import snn_deploy.models as zoo
from snn_deploy.errors import UserError
from snn_deploy.sims.backends import lava_build, lava_chip
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
from snn_deploy.graph import input_sequence
from snn_deploy.quant import quantize
from snn_deploy.sims.backends.simulator import simulate

DEFAULT = ("spikformer-tiny", "spikformer-v2-tiny", "qkformer-tiny", "spikformer-cifar10-4-384",
           "qkformer-cifar10-4-384")
REWRITE = "maxpool-after-lif"


def tree_rss() -> int:
    """Proportional resident bytes (PSS: a shared page counts once, split among its users) of this process and
    every descendant (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier += children
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:")) * 1024
        except (OSError, StopIteration):
            continue
    return total


class PeakRSS:
    """Samples :func:`tree_rss` in a thread while in the ``with`` block."""

    def __enter__(self) -> "PeakRSS":
        self.peak, self._stop = tree_rss(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, tree_rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def spiking_graph(name: str, steps: int, seed: int = 0):
    torch.manual_seed(seed)
    model = zoo.create(name, mode="loihi").eval()
    if blocking_problems(model):
        model, _ = apply_rewrites(model, [REWRITE])
    with torch.no_grad():
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.weight.uniform_(1, 3), bn.bias.uniform_(0, 1.2)
            bn.running_var.uniform_(0.5, 2), bn.running_mean.uniform_(-0.2, 0.2)
        quantize(model)
        graph = lower(model)
    graph.T = steps
    del model
    gc.collect()
    return graph


def whole(name: str, steps: int, limit_s: float) -> dict:
    graph = spiking_graph(name, steps)
    x = torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    expected = simulate(graph, x).spikes
    payload = input_sequence(graph, x)
    net = lava_build.build(graph, payload)
    processes = net.all_processes()
    row = {"name": name, "mode": "whole", "processes": len(processes),
           "process_types": lava_chip.process_types(processes),
           "non_chip_types": lava_chip.non_chip_types(processes)}
    del net, processes
    gc.collect()
    began = time.perf_counter()
    with PeakRSS() as rss:
        try:
            result = lava_build.run(graph, payload, progress=lambda done, total: None, timeout_s=limit_s)
        except UserError as exc:
            result, row["error"] = None, str(exc)
    row["peak_rss_gb"] = round(rss.peak / 2 ** 30, 2)
    row["wall_s"] = round(time.perf_counter() - began, 1)
    row["layers_compared"] = len(expected)
    row["layers_exact"] = 0 if result is None else sum(
        torch.equal(result.spikes[n], s) for n, s in expected.items())
    if result is not None:
        row["compile_s"], row["run_s"] = round(result.compile_s, 1), round(result.run_s, 1)
    return row


def per_layer(name: str, steps: int, limit_s: float, budget_s: float) -> dict:
    """Each LIF layer alone (``lava_build.run_layers``), driven by the simulator's spikes, until ``budget_s``."""
    graph = spiking_graph(name, steps)
    x = torch.rand(1, *graph.input.shape, generator=torch.Generator().manual_seed(0))
    expected = simulate(graph, x).spikes
    payload = input_sequence(graph, x)
    began = time.perf_counter()
    with PeakRSS() as rss:
        result = lava_build.run_layers(graph, payload, expected, progress=lambda done, total: None,
                                       timeout_s=limit_s, budget_s=budget_s)
    compared = [n for n in expected if n in result.spikes]
    built = result.processes
    return {"name": name, "mode": "per-layer", "processes": len(built), "process_types": sorted(set(built)),
            "non_chip_types": [t for t in sorted(set(built)) if t not in lava_chip.CHIP_TYPES],
            "peak_rss_gb": round(rss.peak / 2 ** 30, 2), "wall_s": round(time.perf_counter() - began, 1),
            "layers_compared": len(compared),
            "layers_exact": sum(torch.equal(result.spikes[n], expected[n]) for n in compared),
            "layers_total": len(expected)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(DEFAULT))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--limit-s", type=float, default=900.0)
    parser.add_argument("--per-layer", default="", help="configurations to run layer by layer (mode per-layer)")
    parser.add_argument("--budget-s", type=float, default=1800.0, help="per-layer: no layer starts after this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = []
    for name in filter(None, args.configs.split(",")):
        rows.append(whole(name, args.steps, args.limit_s))
        print(json.dumps(rows[-1]), flush=True)
    for name in filter(None, args.per_layer.split(",")):
        rows.append(per_layer(name, args.steps, args.limit_s, args.budget_s))
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"configs": rows}, indent=1) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
