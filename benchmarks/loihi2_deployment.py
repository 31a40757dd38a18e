"""What a Loihi 2 deployment of every published zoo configuration takes: cores, chips, synaptic memory, neurons,
pipeline latency, mapping violations, and time / energy per inference at a stated firing rate.

    python benchmarks/loihi2_deployment.py [--rate 0.1] [--configs NAME,...] [--markdown FILE] [--json FILE]

Per configuration: the model is built with random weights (seed 0; only the graph's structure and weight widths
matter here, not its activity), quantized and lowered to the deployed graph exactly as ``snn-deploy export
--target loihi2`` does (QKFormer with ``--rewrite maxpool-after-lif``, which its blocking analog max-pools need);
the graph is mapped with the Loihi 2 profile (``snn_deploy/graph/profiles.py``: compiler model derived from Intel's compiler
output, estimated) and costed at a stated firing rate (``sims/stated_activity.py``: every neuron fires with
probability ``--rate`` per step, independently; the analog input sends every pixel every step), not simulated:
the large configurations would take hours. Spike products are mapped as coincidence neurons. Time and energy use
the Loihi 2 calibration (fitted on PilotNet LIF only: applied to another network it is an extrapolation, labelled
as such). Runtime: about 20 s and 3.7 GB per large configuration (building and lowering), one at a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

import snn_deploy.models as zoo
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
from snn_deploy.graph import LOIHI2
from snn_deploy.quant import quantize
from snn_deploy.sims.hardware.cost import hardware_cost
from snn_deploy.sims.hardware.mapper import map_graph
from snn_deploy.sims.hardware.stated_activity import stated_activity

REWRITE = "maxpool-after-lif"


def published() -> list[str]:
    """Every zoo configuration with a published parameter count (the papers' configurations)."""
    return [n for n in zoo.names() if zoo.spec(n).published_params is not None]


def row(name: str, rate: float, seed: int = 0) -> dict:
    began = time.perf_counter()
    torch.manual_seed(seed)
    model = zoo.create(name, mode="loihi").eval()
    rewrites = []
    if blocking_problems(model):
        model, _ = apply_rewrites(model, [REWRITE])
        rewrites.append(REWRITE)
    with torch.no_grad():
        quantize(model)
        graph = lower(model)
    del model
    gc.collect()
    mapping = map_graph(graph, LOIHI2)
    cost = hardware_cost(graph, mapping, stated_activity(graph, rate))
    layers = [layer for layer in mapping.layers.values() if layer.placement == "chip"]
    words = sum(c.synmem_units for c in mapping.cores)
    out = {
        "config": name, "rewrites": rewrites, "input": list(graph.input.shape), "T": graph.T,
        "neurons": sum(layer.neurons for layer in layers),
        "synapses": sum(layer.synapses for layer in layers),
        "stored_synapses": sum(layer.stored_synapses for layer in layers),
        "synaptic_memory_units": words, "synaptic_memory_MB": words * LOIHI2.compiler.word_bits / 8 / 2**20,
        "cores": len(mapping.cores), "chips": mapping.chips, "pipeline_latency_steps": mapping.pipeline_depth,
        "violations": [f"{v.node}: {v.what}" for v in mapping.violations],
        "rate": rate,
        "energy_mJ": {"dynamic": cost.dynamic_energy_pj / 1e9, "static": cost.static_energy_pj / 1e9,
                      "total": cost.energy_total_pj / 1e9},
        "time_ms": {"per_inference_streamed": cost.time_per_sample_ns / 1e6, "latency": cost.latency_ns / 1e6},
        "labels": {"mapping": f"estimated ({LOIHI2.compiler.source.text.split(':')[0]} compiler model)",
                   **cost.labels},
        "seconds": time.perf_counter() - began,
    }
    del graph, mapping, cost
    gc.collect()
    return out


def markdown(rows: list[dict], rate: float) -> str:
    cal = LOIHI2.calibration
    title = ("# What a Loihi 2 deployment of each published zoo configuration takes\n\n"
             f"Written by `python benchmarks/loihi2_deployment.py --rate {rate} --markdown docs/loihi2_deployment.md` "
             "(random weights, seed 0; the stated firing rate, not a simulation, drives time and energy).\n\n")
    head = title + ("| configuration | input (C, H, W) x T | neurons | synapses (stored) | SynMem units (MB) | cores "
                    "| chips | pipeline latency (steps) | violations | energy / inference (dynamic + static) "
                    "| time / inference (streamed; latency) |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
    lines = []
    for r in rows:
        e, t = r["energy_mJ"], r["time_ms"]
        name = r["config"] + (" (" + ", ".join(f"--rewrite {w}" for w in r["rewrites"]) + ")" if r["rewrites"] else "")
        lines.append(f"| {name} | {'x'.join(map(str, r['input']))} x {r['T']} | {r['neurons']:,} | "
                     f"{r['synapses']:,} ({r['stored_synapses']:,}) | {r['synaptic_memory_units']:,} "
                     f"({r['synaptic_memory_MB']:.1f}) | {r['cores']:,} | {r['chips']} | "
                     f"{r['pipeline_latency_steps']} | {len(r['violations'])} | {e['total']:.3g} mJ "
                     f"({e['dynamic']:.3g} + {e['static']:.3g}) | {t['per_inference_streamed']:.3g} ms; "
                     f"{t['latency']:.3g} ms |")
    notes = (f"\nFiring rate: {rate} spikes per neuron and step for every LIF (stated, not measured; analog input: "
             "every pixel every step). Cores, chips, synaptic memory and violations: estimated (Loihi 2 compiler "
             "model, `snn_deploy/graph/profiles.py`). Time and energy: Loihi 2 figures "
             f"{cal.label('time_per_step')} (time) and {cal.label('total_energy')} (total energy) on PilotNet; "
             "applied to these networks they are extrapolations from one calibration network, not validated. "
             "Static energy: 0.232078 W per chip (measured) x chips x streamed time. Spike products as coincidence "
             "neurons.\n")
    return head + "\n".join(lines) + "\n" + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.1, help="spikes per neuron and step (default 0.1)")
    parser.add_argument("--configs", help="comma-separated zoo names (default: every published configuration)")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    args = parser.parse_args(argv)
    names = args.configs.split(",") if args.configs else published()
    rows = []
    for name in names:
        r = row(name, args.rate)
        rows.append(r)
        print(f"{name:<28} {r['cores']:>6} cores {r['chips']:>3} chip(s) {len(r['violations']):>3} violations "
              f"{r['energy_mJ']['total']:9.3g} mJ {r['time_ms']['per_inference_streamed']:9.3g} ms "
              f"({r['seconds']:.0f} s)", flush=True)
    table = markdown(rows, args.rate)
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        args.json.write_text(json.dumps({"schema_version": 1, "rate": args.rate, "rows": rows}, indent=2) + "\n")
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
