"""The hardware report: one analysis of a bundle on a data set, written as JSON, CSV, console table and HTML.

Why one module: ``snn-deploy simulate`` and ``snn-deploy report`` show the same analysis (simulated activity, the
mapping, the per-tick hardware estimate for both models of the spike products, the papers' 45 nm convention) at
two levels of detail, and the JSON is the single source every other view is rendered from.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from snn_deploy import __version__
from snn_deploy.fixedpoint import limits as L
from snn_deploy.graph import Activity, Graph, HardwareProfile, SpikeProductNode
from snn_deploy.graph.hardware import PRODUCT_MODELS, lowering_name
from snn_deploy.graph.nodes import reset_text
from snn_deploy.io import atomic_directory, default_mode
from snn_deploy.sims.hardware import neurobench, timing, uncertainty
from snn_deploy.sims.hardware.cost import (
    COMPONENTS, HardwareCost, Loads, PaperEstimate, hardware_cost, mapping_loads, paper_energy,
)
from snn_deploy.sims.hardware.bound import RESOURCE_LABELS, resource_bound
from snn_deploy.sims.hardware.mapper import METRICS, Mapping, map_graph
from snn_deploy.sims.hardware.schema import validate
from snn_deploy.sims.hardware.tradeoff import lowering_row, mark_pareto
from snn_deploy.sims.backends.simulator import REGISTERS, SIGMA_DELTA_REGISTERS

if TYPE_CHECKING:
    from snn_deploy.exporters.formats.bundle import Bundle

SCHEMA_VERSION = 5
REPORT_MODELS = {"neurons": None, "embedded": "embedded"}
"""The report's two models of the spike products: on the neuro cores in the bundle's lowering (``Graph.attention``,
named in each model's ``spike_products``), or on the embedded x86 cores."""
SCHEMA_FILE = "report.schema.json"
NEUROBENCH_FILE = "neurobench.json"
CSV_COLUMNS = ("name", "kind", "node", "placement", "shape", "neurons", "synapses", "stored_synapses", "cores", "tile",
               "limited_by", "depth", "spikes", "firing_rate", "synaptic_ops", "energy_pj", "energy_share",
               "time_per_step_ns", "time_share", "bottleneck_core", "time_limited_by", "paper_sops",
               "paper_energy_pj")
CORE_COLUMNS = ("layer", "core", "chip", "tile", "neurons", "synapses", "memory_bytes", "memory_share", "fan_in",
                "fan_out", "synaptic_ops", "spikes", "spikes_in", "spikes_out", "busy_ns_per_step", "limited_by")
"""``cores.csv``: per core, counts per inference and time per step (mean over the T steps)."""
PAPER_NOTES = [
    "SOPs = input firing rate x T x FLOPs per conv layer; E = 4.6 pJ x FLOPs(first conv) + 0.9 pJ x SOPs",
    "first conv (analog input) counted once as MACs, as in the papers' equation",
    "integer residual inputs: rate = mean value (each summand spike is an accumulate)",
    "spike products: T x heads x N x d^2 x (min(fr_k, fr_v) + fr_q) accumulates (public Spikingformer counter)",
    "max-pooling (lowered to a sum conv) is not counted, as in the papers",
]


def schema() -> dict:
    """The JSON Schema of ``report.json``."""
    return json.loads(resources.files("snn_deploy.sims.hardware").joinpath(SCHEMA_FILE).read_text())


@dataclass
class Analysis:
    """Everything a report shows: activity, a mapping and hardware cost per spike-product model, the 45 nm view."""

    graph: Graph
    profile: HardwareProfile
    activity: Activity
    mappings: dict[str, Mapping]
    loads: dict[str, Loads]
    """Per mapping: its rates and core and edge loads, computed once here; the cost, timing and report read them."""
    costs: dict[str, HardwareCost]
    paper: PaperEstimate
    lowerings: dict[str, tuple[Mapping, HardwareCost]] | None = None
    """The registry's lowerings of the spike products the report models do not already price (``products`` text:
    mapping and cost at the same simulated activity): the "spike-product lowerings" section; None: not asked
    for (``report --no-lowerings``, ``simulate``) or no spike products."""


def analyse(graph: Graph, profile: HardwareProfile, activity: Activity, *, kernel_sharing: bool = True,
            lowerings: bool = False) -> Analysis:
    """Map and cost ``graph`` in both report models of its spike products; ``lowerings``: also in every other
    lowering of the registry (:data:`~snn_deploy.graph.hardware.PRODUCT_MODELS`; one more mapping each), where the
    graph has spike products."""
    mappings = {m: map_graph(graph, profile, products=REPORT_MODELS[m] or graph.attention,
                             kernel_sharing=kernel_sharing) for m in REPORT_MODELS}
    loads = {m: mapping_loads(graph, mapping, activity) for m, mapping in mappings.items()}
    costs = {m: hardware_cost(graph, mapping, activity, loaded=loads[m]) for m, mapping in mappings.items()}
    others = None
    if lowerings and graph.of_kind(SpikeProductNode):
        others = {}
        for products in PRODUCT_MODELS:
            if products not in (graph.attention, *filter(None, REPORT_MODELS.values())):
                mapping = map_graph(graph, profile, products=products, kernel_sharing=kernel_sharing)
                others[products] = (mapping, hardware_cost(graph, mapping, activity))
    return Analysis(graph, profile, activity, mappings, loads, costs, paper_energy(graph, activity), others)


LOWERINGS_NOTE = ("Every lowering of the spike products in the registry (export --attention; embedded: x86 cores, "
                  "partial), mapped and costed like this report's main figures at this run's simulated activity. "
                  "Pareto-optimal: no other complete, violation-free row is at least as good on chips, latency (one "
                  "inference alone) and total energy and better on one; partial rows and rows with violations (not "
                  "exact on the chip, refused by name) are shown but never marked.")


def lowerings_json(analysis: Analysis, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The report's ``lowerings`` section: one row per lowering of the registry, the exported one (a bundle records
    one lowering for all its spike products) and the Pareto-optimal ones marked
    (:mod:`~snn_deploy.sims.hardware.tradeoff`, the rule of the deployment trade-off table). None where
    :attr:`Analysis.lowerings` is None."""
    if analysis.lowerings is None:
        return None
    graph, own = analysis.graph, analysis.graph.attention
    priced = {own: (analysis.mappings["neurons"], analysis.costs["neurons"]),
              **{p: (analysis.mappings[m], analysis.costs[m]) for m, p in REPORT_MODELS.items() if p},
              **analysis.lowerings}
    rows, details = [], []
    for products in PRODUCT_MODELS:
        r, d = lowering_row(manifest.get("arch") or "bundle", products, graph, analysis.profile, products,
                            analysis.activity, mapped=priced[products])
        rows.append(r)
        details.append(d)
    mark_pareto(rows, details)
    out = []
    for r, d in zip(rows, details):
        energy = dict(r["energy_mJ"], static=r["energy_mJ"]["static"] if d["static_modelled"] else None)
        out.append({"attention": r["attention"], "products": d["products"], "exported": d["products"] == own,
                    "cores": r["cores"], "chips": r["chips"], "lower_bound_cores": r["lower_bound_cores"],
                    "ticks_per_step": d["ticks_per_step"], "latency_steps": r["latency_steps"],
                    "latency_ticks": d["ticks"], "latency_ms": d["latency_ms"],
                    "time_per_inference_ms": r["time_per_inference_ms"], "energy_mJ": energy,
                    "violations": r["violations"], "partial": d["partial"], "provenance": d["provenance"],
                    "pareto": d["pareto"]})
    return {"activity": "simulated", "profile": analysis.profile.name, "exported": own,
            "mapping": "estimated", "rows": out, "note": LOWERINGS_NOTE}


def _figure(f) -> dict[str, Any]:
    return {"value": float(f.value), "unit": f.unit, "source": f.source, "estimated": bool(f.estimated)}


def _spread(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()) if values.size else 0.0, "max": float(values.max()) if values.size else 0.0}


def provenance(mapping: Mapping, cost: HardwareCost) -> str:
    """``calibrated`` / ``estimated`` (the profile's), or ``partial`` where work the figures leave out (embedded
    x86 cores) is part of the network: then the figures are a lower bound, never labelled calibrated."""
    if cost.embedded_accumulates:
        return "partial"
    return "calibrated" if mapping.profile.calibration else "estimated"


def pipeline_ticks(report: dict[str, Any]) -> int:
    """The pipeline depth of the neuro-core mapping in chip ticks (its spike products' lowering included): the
    ticks of one inference alone beyond its T steps of ``ticks_per_step`` ticks."""
    hw = report["hardware"]["neurons"]
    return hw["ticks"] - report["bundle"]["T"] * hw.get("ticks_per_step", 1)


def _cost_json(mapping: Mapping, cost: HardwareCost, times: timing.CoreTimes) -> dict[str, Any]:
    per_sample = cost.time_per_sample_ns
    static = cost.static_energy_pj if cost.static_modelled else None
    return {
        "provenance": provenance(mapping, cost), "labels": cost.labels,
        "spike_products": cost.products, "cores": len(mapping.cores),
        "chips": mapping.chips, "violations": len(mapping.violations),
        "energy_pj": {k: cost.energy_pj[k] for k in COMPONENTS}, "energy_pj_total": cost.energy_total_pj,
        "energy_pj_dynamic": cost.dynamic_energy_pj, "energy_pj_static": static,
        "energy_pj_static_single": cost.static_energy_single_pj if cost.static_modelled else None,
        "power_w": uncertainty.power_w(cost), "edp_pj_s": uncertainty.edp_pj_s(cost),
        "ranges": uncertainty.ranges(mapping.profile, mapping, cost, times), "not_modelled": cost.not_modelled,
        "time_per_step_ns": cost.time_per_step_ns,
        "latency_ns": cost.latency_ns, "time_per_sample_ns": per_sample,
        "samples_per_s": 1e9 / per_sample if per_sample else 0.0, "ticks": int(cost.tick_ns["total"].size),
        "ticks_per_step": cost.ticks_per_step,
        "tick_ns": _spread(cost.tick_ns["total"]), "synaptic_ops": cost.synaptic_ops,
        "embedded_accumulates": cost.embedded_accumulates, "lower_bound_cores": resource_bound(mapping).cores,
        "constants": {k: _figure(f) for k, f in cost.constants.items()}, "notes": cost.notes,
    }


def _paper_by_layer(graph: Graph, paper: PaperEstimate, mapping: Mapping) -> dict[str, tuple[float, float]]:
    """(SOPs, energy) of the papers' layers, charged to the LIF populations their currents feed."""
    consumers = graph.consumers()
    out: dict[str, tuple[float, float]] = {}
    for layer in paper.layers:
        for name in consumers[layer.name]:
            if name in mapping.layers:
                sops, energy = out.get(name, (0.0, 0.0))
                out[name] = (sops + layer.sops, energy + layer.energy_pj)
    return out


def build(analysis: Analysis, bundle: Bundle, *, dataset: str, split: str) -> dict[str, Any]:
    """The report as plain data (validated against :func:`schema`). Layers and cores are the neuro-core
    model's, in the bundle's spike-product lowering (the one that prices every operation with published figures)."""
    act, graph = analysis.activity, analysis.graph
    mapping, cost = analysis.mappings["neurons"], analysis.costs["neurons"]
    spikes = analysis.loads["neurons"].rates.spikes
    paper_by_layer = _paper_by_layer(graph, analysis.paper, mapping)
    per_core = {m: timing.core_activity(graph, analysis.mappings[m], act, loaded=analysis.loads[m])
                for m in REPORT_MODELS}
    model_times = {m: timing.core_times(analysis.mappings[m], per_core[m]) for m in REPORT_MODELS}
    counts, times = per_core["neurons"], model_times["neurons"]
    step_ns = timing.step_time_ns(cost)
    layer_times = {lt.layer: lt for lt in timing.layer_times(mapping, times, step_ns)}
    total = cost.dynamic_energy_pj
    layers = []
    for name, layer in mapping.layers.items():
        energy = sum(cost.layer_energy_pj[name].values())
        s = float(spikes[name].sum())
        paper_sops, paper_e = paper_by_layer.get(name, (0.0, 0.0))
        lt = layer_times[name]
        spread = uncertainty.layer_factors(analysis.profile, lt.terms_ns, cost.layer_energy_pj[name])
        layers.append({
            "name": name, "kind": layer.kind, "node": layer.node, "placement": layer.placement,
            "shape": list(layer.shape),
            "neurons": layer.neurons, "synapses": layer.synapses, "stored_synapses": layer.stored_synapses,
            "cores": len(layer.cores), "tile": list(layer.tile), "limited_by": layer.limited_by,
            "depth": layer.depth, "spikes": s, "firing_rate": s / (layer.neurons * act.T),
            "synaptic_ops": cost.layer_synops[name], "energy_pj": energy,
            "energy_share": energy / total if total else 0.0,
            "time_per_step_ns": lt.time_ns, "time_share": lt.share, "bottleneck_core": lt.core,
            "time_limited_by": lt.limited_by, "paper_sops": paper_sops, "paper_energy_pj": paper_e,
            "time_range_ns": [lt.time_ns * f for f in spread["time"]] if spread else None,
            "energy_range_pj": [energy * f for f in spread["energy"]] if spread else None,
        })
    profile = analysis.profile
    utilisation = [c.utilisation(profile) for c in mapping.cores]
    busy = times.busy.mean(1) if times.busy.size else np.zeros(0)
    cores = [{"index": c.index, "layer": c.population, "box": list(c.box), "chip": c.chip, "tile": list(c.tile),
              "neurons": c.neurons,
              "fan_in": c.fan_in, "fan_out": c.fan_out, "synapses": c.synapses, "memory_bits": c.memory_bits,
              "memory_bytes": -(-c.memory_bits // 8),
              "synaptic_ops": float(cost.core_synops[c.index]), "spikes": float(counts.spikes[c.index].sum()),
              "spikes_in": float(counts.messages_in[c.index].sum()),
              "spikes_out": float(counts.messages_out[c.index].sum()),
              "busy_ns_per_step": float(busy[c.index]), "limited_by": times.limiter(c.index), "utilisation": u}
             for c, u in zip(mapping.cores, utilisation)]
    manifest = bundle.manifest
    per_second = 1 / act.backend_s if act.backend_s else 0.0
    slowest = max(layers, key=lambda la: la["time_per_step_ns"], default=None)
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "snn-deploy", "version": __version__},
        "bundle": {"path": str(bundle.path), "arch": manifest.get("arch"), "target": manifest.get("target", ""),
                   "T": graph.T, "input_shape": list(graph.input.shape),
                   "pipeline_latency_steps": max(graph.depths().values()),
                   "spike_products": len(graph.of_kind(SpikeProductNode)),
                   "reset_interval": graph.reset_interval, "reset_offset": graph.reset_offset,
                   "pipeline_fill": graph.pipeline_fill},
        "run": {"provenance": "simulated", "dataset": dataset, "split": split, "samples": act.samples,
                "backend": act.backend, "processes": act.processes, "accuracy": act.accuracy,
                "backend_seconds": act.backend_s, "samples_per_s": act.samples * per_second,
                "steps_per_s": act.samples * act.T * per_second},
        "profile": {"name": profile.name, "limits": profile.limits(), "sources": list(profile.sources)},
        "mapping": {"provenance": "estimated", "spike_products": mapping.products, "sums": mapping.sums,
                    "kernel_sharing": mapping.kernel_sharing, "cores": len(mapping.cores), "chips": mapping.chips,
                    "tiles": mapping.tiles_used, "lower_bound": resource_bound(mapping).json(mapping),
                    "utilisation": {m: _spread(np.array([u[m] for u in utilisation])) for m in METRICS},
                    "violations": [{"layer": p.node, "what": p.what, "fix": p.fix} for p in mapping.violations]},
        "hardware": {m: _cost_json(analysis.mappings[m], analysis.costs[m], model_times[m]) for m in REPORT_MODELS},
        "timing": {"provenance": "calibrated" if profile.calibration else "estimated",
                   "spike_products": mapping.products, "step_ns": step_ns, "label": cost.labels["time"],
                   "groups": [list(g) for g in times.groups], "terms": list(times.terms),
                   "bottleneck": {"layer": slowest["name"], "core": slowest["bottleneck_core"],
                                  "limited_by": slowest["time_limited_by"],
                                  "time_per_step_ns": slowest["time_per_step_ns"]} if slowest else None,
                   "timeline_ns": {k: [float(x) for x in v] for k, v in cost.tick_ns.items()}},
        "neurobench": {"provenance": "simulated",
                       **neurobench.metrics(graph, act, weight_bits=profile.weight_bits, accuracy=act.accuracy),
                       "notes": neurobench.NOTES},
        "paper_45nm": {"provenance": "paper", "energy_pj": analysis.paper.energy_pj, "sops": analysis.paper.sops,
                       "mac_flops": analysis.paper.mac_flops,
                       "constants": {k: _figure(f) for k, f in analysis.paper.constants.items()},
                       "layers": [asdict(layer) for layer in analysis.paper.layers], "notes": PAPER_NOTES},
        "registers": register_violations(act, profile),
        "layers": layers,
        "cores": cores,
    }
    section = lowerings_json(analysis, manifest)
    if section is not None:
        report["lowerings"] = section
    errors = validate(report, schema())
    if errors:  # a bug here, not a user error: the schema is the contract
        raise AssertionError("report does not match its schema: " + "; ".join(errors[:5]))
    return report


def register_violations(act: Activity, profile: HardwareProfile) -> list[dict[str, Any]]:
    """Every (layer, register) whose width the run exceeded: the synaptic input against the profile's input
    current bits, u and v against their 24 bits, a sigma-delta layer's state against int32
    (:data:`~snn_deploy.sims.backends.simulator.REGISTERS`)."""
    bits = {"synaptic input": profile.input_current_bits, "current": L.UV_BITS, "voltage": L.UV_BITS,
            **{register: 32 for register in SIGMA_DELTA_REGISTERS}}
    return [{"layer": layer, "register": register, "bits": bits[register], "behaviour": REGISTERS[register],
             "count": int(found[0]), "worst": int(found[1])}
            for (layer, register), found in act.registers.items() if found[0]]


def neurobench_json(report: dict[str, Any]) -> dict[str, Any]:
    """The ``--neurobench`` file: NeuroBench's result layout (static and workload metrics under their names)."""
    nb = report["neurobench"]
    keys = ("footprint", "parameter_count", "connection_sparsity", "classification_accuracy", "activation_sparsity",
            "synaptic_operations")
    return {k: nb[k] for k in keys if k in nb}


# --- views ------------------------------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    """A CSV cell: shapes and tiles as ``CxHxW``, nothing as an empty cell."""
    if isinstance(value, list):
        return "x".join(map(str, value))
    return "" if value is None else value


def csv_text(report: dict[str, Any]) -> str:
    """``layers.csv``: one row per layer (population), the shape and tile as ``CxHxW``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for layer in report["layers"]:
        writer.writerow({k: _cell(layer[k]) for k in CSV_COLUMNS})
    return out.getvalue()


def cores_csv_text(report: dict[str, Any]) -> str:
    """``cores.csv``: one row per core (see :data:`CORE_COLUMNS`); memory share of the profile's per-core memory."""
    memory = report["profile"]["limits"]["synaptic_memory_bytes_per_core"]["value"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CORE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in report["cores"]:
        row = {**c, "core": c["index"], "memory_share": c["memory_bytes"] / memory}
        writer.writerow({k: _cell(row[k]) for k in CORE_COLUMNS})
    return out.getvalue()


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def energy_text(pj: float) -> str:
    """Picojoules in the largest unit that keeps the number readable."""
    for factor, unit in ((1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if pj >= factor:
            return f"{pj / factor:.3g} {unit}"
    return f"{pj:.3g} pJ"


def time_text(ns: float) -> str:
    for factor, unit in ((1e9, "s"), (1e6, "ms"), (1e3, "us")):
        if ns >= factor:
            return f"{ns / factor:.3g} {unit}"
    return f"{ns:.3g} ns"


def _cores_text(layer: dict[str, Any]) -> str:
    """A layer's cores, or where it runs instead: a host-computed layer takes none."""
    return "0 (host)" if layer["placement"] == "host" else str(layer["cores"])


def _limit_text(layer: dict[str, Any]) -> str:
    """The bottleneck core and its limiting term, e.g. ``#12 synaptic ops``."""
    if layer["bottleneck_core"] is None:
        return "host"
    return f"#{layer['bottleneck_core']} {timing.TERM_LABELS[layer['time_limited_by']]}"


FIXES = {
    "synaptic_ops": "spread the layer over more cores (fewer synapses per core) or make its input sparser",
    "neuron_updates": "fewer neurons per core (every neuron updates every step, spiking or not): split the layer over "
                      "more cores or make it smaller",
    "spikes_out": "fewer destination cores per neuron (consumers on fewer cores) or a lower firing rate",
    "spikes_in": "spread the receiving layer over more cores or lower its inputs' firing rate",
}
"""What would shorten a step limited by each time term."""


def ranged(report_cost: dict[str, Any], key: str, text=None) -> str:
    """``value (low to high)`` of a figure of ``hardware.<model>``, or the value alone where it has no range."""
    text = text or (lambda v: f"{v:.3g}")
    rng = (report_cost["ranges"] or {}).get(key)
    value = rng["central"] if rng else report_cost[key]
    return f"{text(value)} ({text(rng['low'])} to {text(rng['high'])})" if rng else text(value)


def _per_s(value: float) -> str:
    return f"{value:,.0f}"


def _watts(value: float) -> str:
    return _si(value, "W")


def _edp(pj_s: float) -> str:
    return _si(pj_s * 1e-12, "J s") if pj_s >= 1 else f"{pj_s:.3g} pJ s"


def summary_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures (label, value) every view starts with, in the order a reader asks: does it fit, how
    fast, how much energy, how sure, where is the bottleneck and what would fix it, then the rest."""
    run, hw, tm, nb = report["run"], report["hardware"]["neurons"], report["timing"], report["neurobench"]
    profile, violations = report["profile"]["name"], report["mapping"]["violations"]
    rng = hw["ranges"]
    bottleneck = tm["bottleneck"]
    accuracy = (f"{100 * run['accuracy']:.2f} % on {run['samples']} {run['dataset']} {run['split']} samples"
                if run["accuracy"] is not None else "none (no classifier readout, or no labels)")
    depth = pipeline_ticks(report)
    cores = ranged(hw, "cores", lambda v: f"{v:.0f}")
    fits = (f"yes: {cores} cores on {hw['chips']} chip(s) of {profile}, 0 violations (estimated)"
            if not violations else f"no: {len(violations)} violation(s) of {profile}'s per-core limits "
                                   f"({cores} cores on {hw['chips']} chip(s); see violations)")
    bound = report["mapping"].get("lower_bound")
    if bound:  # the fewest cores any mapper could use (one population per core; global: any mapper)
        fits += (f"; lower bound {bound['cores']} cores ({RESOURCE_LABELS[bound['binding']]} binding; "
                 f"{bound['global_cores']} for any mapper)")
    reset = reset_text(report["bundle"].get("reset_interval", 0), report["bundle"].get("reset_offset", 0),
                       report["bundle"].get("pipeline_fill", False))
    lines = [
        ("fits", fits),
        ("latency", f"{ranged(hw, 'latency_ns', time_text)} per inference on its own ({report['bundle']['T']} steps "
                    + (f"of {hw['ticks_per_step']} ticks (the {lowering_name(hw['spike_products'])} lowering's sub-steps) "
                       if hw.get("ticks_per_step", 1) > 1 else "")
                    + f"+ {depth} ticks for the pipeline depth; {hw['provenance']})"),
        ("throughput", f"{ranged(hw, 'samples_per_s', _per_s)} samples/s with samples streamed back to back and the "
                       "input already on the chip (host I/O not modelled: see below)"),
        ("time per step", f"{ranged(hw, 'time_per_step_ns', time_text)} ({hw['provenance']})"),
        ("state reset", f"{reset} (recorded in the bundle)"),
    ]
    if report["bundle"]["spike_products"]:
        lines.append(("spike products", f"the {lowering_name(hw['spike_products'])} lowering (export --attention)"))
    if hw["energy_pj_static"] is None:
        static = f"static not modelled (no static power figure for {profile})"
    else:
        static = (f"static {ranged(hw, 'energy_pj_static', energy_text)} (static power x chips x the streamed time "
                  f"per sample; {energy_text(hw['energy_pj_static_single'])} for one inference on its own)")
    lines += [
        ("energy per inference", f"{ranged(hw, 'energy_pj_total', energy_text)}: dynamic "
                                 f"{ranged(hw, 'energy_pj_dynamic', energy_text)}, {static}"),
        ("power, energy-delay product", f"{ranged(hw, 'power_w', _watts)} while streaming; EDP "
                                        f"{ranged(hw, 'edp_pj_s', _edp)} (energy x latency)"),
    ]
    if rng:
        basis = rng["basis"]
        sure = (f"{hw['provenance']}, {basis['label']}; {100 * basis['time_outside_share']:.0f} % of the step time and "
                f"{100 * basis['energy_outside_share']:.0f} % of the dynamic energy are outside the fit's mix of "
                "terms (ranges: low to high, docs/hardware.md)")
    else:
        sure = f"{hw['labels']['time']}: no range (not calibrated on any measurement)"
    lines.append(("how sure", sure))
    lines.append(("not modelled", "; ".join(f"{m['what']}, would change {m['affects']} ({m['evidence']})"
                                            for m in hw["not_modelled"])))
    if bottleneck:
        term = bottleneck["limited_by"]
        lines.append(("bottleneck", f"{bottleneck['layer']}, core #{bottleneck['core']}: "
                      f"{time_text(bottleneck['time_per_step_ns'])} per step, limited by "
                      f"{timing.TERM_LABELS[term]} ({tm['provenance']})" + (f"; would help: {FIXES[term]}"
                                                                            if term in FIXES else "")))
    lines += [
        ("register overflows (simulated)", "; ".join(
            f"{r['layer']} {r['register']} ({r['bits']}-bit): {r['count']:,} value(s), worst {r['worst']:,}"
            for r in report.get("registers", [])) or "none"),
        ("accuracy (simulated)", accuracy),
        ("synaptic ops per inference", f"{_si(hw['synaptic_ops'], '')} (simulated)"),
        ("NeuroBench (simulated)", f"activation sparsity {nb['activation_sparsity']:.3f}, connection sparsity "
                       f"{nb['connection_sparsity']:.3f}, {nb['parameter_count']:,} parameters, footprint "
                       f"{_si(nb['footprint'], 'B')}, effective SOPs {_si(nb['synaptic_operations']['Effective_ACs'], '')}"
                       f" ACs + {_si(nb['synaptic_operations']['Effective_MACs'], '')} MACs"),
        ("45 nm paper convention", f"{_si(report['paper_45nm']['sops'], '')} SOPs, "
                                   f"{energy_text(report['paper_45nm']['energy_pj'])} per inference"),
    ]
    return lines


def lowering_text(row: dict[str, Any]) -> str:
    """One row of the ``lowerings`` section as text: cores, chips, latency, time and energy per inference, flags."""
    e = row["energy_mJ"]
    static = "static not modelled" if e["static"] is None else f"{energy_text(e['static'] * 1e9)} static"
    flags = [f for f, on in (("exported", row["exported"]), ("Pareto-optimal", row["pareto"]),
                             ("partial", row["partial"])) if on]
    if row["violations"]:  # the first in full (e.g. token-serial's LIFs that do not hold), the rest counted
        more = len(row["violations"]) - 1
        flags.append(f"violation: {row['violations'][0]}" + (f" (+{more} more in report.json)" if more else ""))
    return (f"{row['cores']:,} cores (bound {row['lower_bound_cores']:,}) on {row['chips']} chip(s), "
            f"{row['latency_ticks']} ticks = {row['latency_ms']:.3g} ms alone, {row['time_per_inference_ms']:.3g} ms "
            f"streamed, {energy_text(e['total'] * 1e9)} ({energy_text(e['dynamic'] * 1e9)} dynamic + {static})"
            + (f" [{'; '.join(flags)}]" if flags else ""))


def lowerings_lines(report: dict[str, Any], asked: bool = True) -> list[str]:
    """The console's account of the ``lowerings`` section, or why there is none."""
    if not report["bundle"]["spike_products"]:
        return ["spike-product lowerings: none to compare (the network has no spike products)"]
    section = report.get("lowerings")
    if section is None:
        return ["spike-product lowerings: not priced" + (" (--no-lowerings)" if not asked else "")]
    return [f"spike-product lowerings on {section['profile']} at the simulated activity (exported: "
            f"{lowering_name(section['exported'])}):"] + [f"  {row['attention']:<14}{lowering_text(row)}" for row in section["rows"]]


TERM_ABBREVIATIONS = {"synaptic_ops": "syn", "neuron_updates": "neu", "spikes_out": "out", "spikes_in": "in"}
"""The console table's short names of :data:`timing.TERM_LABELS` (its caption spells them out)."""


FULL_TABLE_WIDTH = 110
"""Console width from which the per-layer table also shows each layer's shape and firing rate."""


def console_table(report: dict[str, Any], width: int = FULL_TABLE_WIDTH):
    """Per layer: neurons, cores, SOPs, time per step and its share, the bottleneck core and what limits it, share
    of the energy, and from :data:`FULL_TABLE_WIDTH` columns on shape and firing rate. Fits 80 columns: headers
    abbreviated (the caption explains them), names wrap, numbers never break."""
    from snn_deploy.console import table

    hw = report["hardware"]["neurons"]
    full = width >= FULL_TABLE_WIDTH
    columns = {"layer": "name", **({"shape": "text"} if full else {}), "neurons": "number", "cores": "number",
               **({"rate": "number"} if full else {}), "SOPs": "number", "t/step": "number", "%step": "number",
               "limit": "text", "%E": "number"}
    out = table(f"{report['bundle']['path']} on {report['profile']['name']} ({hw['provenance']}; spike products "
                f"in the {lowering_name(hw['spike_products'])} lowering)", columns=columns)
    for layer in report["layers"]:
        limit = ("host" if layer["bottleneck_core"] is None else
                 f"#{layer['bottleneck_core']} {TERM_ABBREVIATIONS[layer['time_limited_by']]}")
        cells = {"layer": layer["name"], "shape": "x".join(map(str, layer["shape"])),
                 "neurons": f"{layer['neurons']:,}", "cores": _cores_text(layer), "rate": f"{layer['firing_rate']:.3f}",
                 "SOPs": _si(layer["synaptic_ops"], ""),
                 "t/step": time_text(layer["time_per_step_ns"]), "%step": f"{100 * layer['time_share']:.0f}%",
                 "limit": limit, "%E": f"{100 * layer['energy_share']:.1f}%"}
        out.add_row(*(cells[c] for c in columns))
    legend = ", ".join(f"{short} {timing.TERM_LABELS[term]}" for term, short in TERM_ABBREVIATIONS.items())
    out.caption = ((f"rate: spikes per neuron and step; " if full else "") +
                   f"t/step: time per step of the layer's slowest core; %step: its share of the step; limit: that "
                   f"core and what limits it ({legend}); %E: share of the dynamic energy"
                   + ("" if full else f"; shapes and firing rates from {FULL_TABLE_WIDTH} columns on and in "
                      "layers.csv") + f".\n{hw['cores']} cores on {hw['chips']} chip(s); step "
                   f"{time_text(report['timing']['step_ns'])}; {ranged(hw, 'energy_pj_total', energy_text)} and "
                   f"{ranged(hw, 'latency_ns', time_text)} per inference ({hw['labels']['time']})")
    return out


STATUSES = {
    "simulated": "counted by running the network (accuracy, spikes, synaptic operations)",
    "measured": "read off a silicon run (lava-dl's Loihi 2 benchmark notebooks): the static power per chip",
    "published": "a figure printed in the cited source as is (paper, product brief, compiler output)",
    "calibrated": "the profile's per-operation figures times one time and one energy scale fitted on measured "
                  "Loihi 2 runs (on what: the label); carries a range (section 4)",
    "estimated": "per-operation or per-core figures from the cited sources applied to the simulated counts, not "
                 "fitted to a measurement (cores and memory; every figure of an uncalibrated profile)",
    "partial": "a figure that leaves out work the network needs (embedded x86 cores): a lower bound, never "
               "labelled calibrated",
    "not modelled": "work or power the model has no figure for; shown next to the figures it would change, never "
                    "counted as 0",
    "paper": "the Spikformer / QKFormer papers' 45 nm convention (0.9 pJ per accumulate, 4.6 pJ per MAC)",
}
"""Every status word a report uses, as the HTML page and docs/hardware.md define it."""
PLOT_SECTIONS = {"timeline": "fast", "energy_components": "energy", "energy_layers": "energy",
                 "layer_time": "bottleneck", "core_utilisation": "bottleneck", "firing_rate": "activity",
                 "spike_raster": "activity"}
"""Which question of the page each plot answers."""
LOWERINGS_PLOT = "lowerings"
"""The chips-vs-latency plot of the ``lowerings`` section (only where the report has one)."""


def _constant_status(key: str, figure: dict[str, Any], calibrated: bool) -> str:
    if key == "static_power_per_chip":
        return "measured"
    if key.startswith("45nm."):
        return "published"
    if calibrated:
        return "calibrated"
    return "estimated" if figure["estimated"] else "published"


def ordered_notes(report: dict[str, Any]) -> list[str]:
    """The page's notes, most important first: the hardware model's (the calibration's caveats first, then what it
    leaves out), then NeuroBench's and the papers' conventions; spike-product notes only where the network has
    spike products."""
    hw = report["hardware"]
    products = report["bundle"]["spike_products"] > 0
    groups = [hw["neurons"]["notes"], hw["embedded"]["notes"] if products else [],
              report["neurobench"]["notes"], report["paper_45nm"]["notes"]]
    out: list[str] = []
    for note in (n for group in groups for n in group):
        if note not in out and (products or "spike product" not in note and "attention" not in note):
            out.append(note)
    return out


def html_text(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """One self-contained page (template ``templates/report.html.j2``) that answers in order: does it fit, how
    fast, how much energy, how sure, where is the bottleneck and what would fix it; then the per-layer table,
    activity, constants with their status and source, and the notes (most important first)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    from snn_deploy.sims.hardware import plots

    env = Environment(loader=PackageLoader("snn_deploy.sims.hardware", "templates"),
                      autoescape=select_autoescape(["j2"]), undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(energy=energy_text, time=time_text, si=_si, lowering=lowering_name)
    hw, paper = report["hardware"], report["paper_45nm"]
    neurons = hw["neurons"]
    products = report["bundle"]["spike_products"] > 0
    calibrated = neurons["provenance"] == "calibrated"
    constants = [(k, v, _constant_status(k, v, calibrated)) for k, v in
                 {**neurons["constants"], **{f"45nm.{k}": v for k, v in paper["constants"].items()}}.items()]
    slowest = sorted(report["cores"], key=lambda c: -c["busy_ns_per_step"])[:SLOWEST_CORES]
    lowering = lowering_name(report["mapping"]["spike_products"])
    figures = [{"name": name, "caption": plots.caption(name, products, lowering), "section": PLOT_SECTIONS[name],
                "src": "data:image/png;base64," + base64.b64encode(images[name]).decode()} for name in plots.PLOTS]
    if LOWERINGS_PLOT in images:
        figures.append({"name": LOWERINGS_PLOT, "caption": plots.LOWERINGS_CAPTION, "section": "lowerings",
                        "src": "data:image/png;base64," + base64.b64encode(images[LOWERINGS_PLOT]).decode()})
    rng = neurons["ranges"]

    def span(key: str, fmt) -> str:
        r = (rng or {}).get(key)
        return f"{fmt(r['low'])} to {fmt(r['high'])}" if r else ("none" if rng is None else "")

    depth = pipeline_ticks(report)
    speed = [("latency_ns", "latency", time_text, f"one inference on its own: {report['bundle']['T']} steps + "
                                                  f"{depth} for the pipeline depth (layers in series)"),
             ("samples_per_s", "throughput (samples/s)", _per_s, "samples streamed back to back, the input already "
                                                                 "on the chip (host I/O not modelled, section 4)"),
             ("time_per_sample_ns", "time per sample", time_text, "streamed: T steps per sample"),
             ("time_per_step_ns", "time per step", time_text, "the slowest core or mesh link, plus the barrier")]
    energy = [("energy_pj_total", "energy per inference", energy_text, "dynamic + static"),
              ("energy_pj_dynamic", "dynamic", energy_text, "per-operation energies x simulated counts"),
              ("energy_pj_static", "static", energy_text,
               "static power x chips x the streamed time per sample" + (
                   f" ({energy_text(neurons['energy_pj_static_single'])} for one inference on its own)"
                   if neurons["energy_pj_static_single"] is not None else "")),
              ("power_w", "power (W)", _watts, "energy per inference / time per sample, while streaming"),
              ("edp_pj_s", "energy-delay product", _edp, "energy per inference x latency")]
    bottleneck = next((value for label, value in summary_lines(report) if label == "bottleneck"), None)
    return env.get_template("report.html.j2").render(
        r=report, hw=neurons, rng=rng, products=products, summary=summary_lines(report), figures=figures,
        constants=constants, slowest=slowest, components=COMPONENTS, models=list(hw) if products else ["neurons"],
        notes=ordered_notes(report), limit_text=_limit_text, cores_text=_cores_text, lowerings=report.get("lowerings"),
        term_labels=timing.TERM_LABELS, speed=speed, energy=energy, span=span, statuses=STATUSES,
        bottleneck=bottleneck)


SLOWEST_CORES = 12
"""Cores listed in the HTML (every core is in cores.csv)."""


def write_dir(out: Path, files: dict[str, bytes], *, force: bool) -> Path:
    """Write ``files`` into directory ``out`` atomically (see :func:`snn_deploy.io.atomic_directory`)."""
    with atomic_directory(out, force=force) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            (tmp / name).chmod(default_mode())
    return Path(out)


def report_files(report: dict[str, Any], activity: Activity) -> dict[str, bytes]:
    """Every file of a report directory."""
    from snn_deploy.sims.hardware import plots

    images = plots.render(report, activity)
    if "lowerings" in report:
        images[LOWERINGS_PLOT] = plots.lowerings(report)
    files = {"report.json": (json.dumps(report, indent=2, sort_keys=True) + "\n").encode(),
             SCHEMA_FILE: (json.dumps(schema(), indent=2) + "\n").encode(),
             NEUROBENCH_FILE: (json.dumps(neurobench_json(report), indent=2, sort_keys=True) + "\n").encode(),
             "layers.csv": csv_text(report).encode(), "cores.csv": cores_csv_text(report).encode(),
             "report.html": html_text(report, images).encode()}
    files.update({f"{name}.png": data for name, data in images.items()})
    return files
