"""The hardware report: one analysis of a bundle on a data set, written as JSON, CSV, console table and HTML.

Why one module: ``snn-deploy simulate`` and ``snn-deploy report`` show the same analysis (simulated activity, the
mapping, the per-tick hardware estimate for both models of the spike products, the papers' 45 nm convention) at
two levels of detail, and the JSON is the single source every other view is rendered from.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from snn_deploy import __version__
from snn_deploy.exporters.bundle import Bundle
from snn_deploy.graph import Graph, HardwareProfile
from snn_deploy.io import atomic_directory, default_mode
from snn_deploy.sims.cost import COMPONENTS, HardwareCost, PaperEstimate, hardware_cost, paper_energy, rates
from snn_deploy.sims.driver import Activity
from snn_deploy.sims.mapper import METRICS, PRODUCT_MODELS, Mapping, map_graph
from snn_deploy.sims.schema import validate

SCHEMA_VERSION = 3
SCHEMA_FILE = "report.schema.json"
PLOTS = ("firing_rate", "energy_breakdown", "core_utilisation", "spike_raster")
CSV_COLUMNS = ("name", "kind", "node", "placement", "shape", "neurons", "synapses", "stored_synapses", "cores", "tile",
               "limited_by", "depth", "spikes", "firing_rate", "synaptic_ops", "energy_pj", "energy_share",
               "paper_sops", "paper_energy_pj")
PAPER_NOTES = [
    "SOPs = input firing rate x T x FLOPs per conv layer; E = 4.6 pJ x FLOPs(first conv) + 0.9 pJ x SOPs",
    "first conv (analog input) counted once as MACs, as in the papers' equation",
    "integer residual inputs: rate = mean value (each summand spike is an accumulate)",
    "spike products: T x heads x N x d^2 x (min(fr_k, fr_v) + fr_q) accumulates (public Spikingformer counter)",
    "max-pooling (lowered to a sum conv) is not counted, as in the papers",
]


def schema() -> dict:
    """The JSON Schema of ``report.json``."""
    return json.loads(resources.files("snn_deploy.sims").joinpath(SCHEMA_FILE).read_text())


@dataclass
class Analysis:
    """Everything a report shows: activity, a mapping and hardware cost per spike-product model, the 45 nm view."""

    graph: Graph
    profile: HardwareProfile
    activity: Activity
    mappings: dict[str, Mapping]
    costs: dict[str, HardwareCost]
    paper: PaperEstimate


def analyse(graph: Graph, profile: HardwareProfile, activity: Activity, *, kernel_sharing: bool = True) -> Analysis:
    mappings = {m: map_graph(graph, profile, products=m, kernel_sharing=kernel_sharing) for m in PRODUCT_MODELS}
    costs = {m: hardware_cost(graph, mapping, activity) for m, mapping in mappings.items()}
    return Analysis(graph, profile, activity, mappings, costs, paper_energy(graph, activity))


def _figure(f) -> dict[str, Any]:
    return {"value": float(f.value), "unit": f.unit, "source": f.source, "estimated": bool(f.estimated)}


def _spread(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(values.mean()) if values.size else 0.0, "max": float(values.max()) if values.size else 0.0}


def _cost_json(mapping: Mapping, cost: HardwareCost) -> dict[str, Any]:
    per_sample = cost.time_per_sample_ns
    return {
        "provenance": "calibrated" if mapping.profile.calibration else "estimated", "labels": cost.labels,
        "spike_products": cost.products, "cores": len(mapping.cores),
        "chips": mapping.chips, "violations": len(mapping.violations),
        "energy_pj": {k: cost.energy_pj[k] for k in COMPONENTS}, "energy_pj_total": cost.energy_total_pj,
        "energy_pj_dynamic": cost.dynamic_energy_pj, "energy_pj_static": cost.static_energy_pj,
        "time_per_step_ns": cost.time_per_step_ns,
        "latency_ns": cost.latency_ns, "time_per_sample_ns": per_sample,
        "samples_per_s": 1e9 / per_sample if per_sample else 0.0, "ticks": int(cost.tick_ns["total"].size),
        "tick_ns": _spread(cost.tick_ns["total"]), "synaptic_ops": cost.synaptic_ops,
        "embedded_accumulates": cost.embedded_accumulates,
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
    """The report as plain data (validated against :func:`schema`). Layers and cores are the coincidence-neuron
    model's (the one that prices every operation with published figures)."""
    act, graph = analysis.activity, analysis.graph
    mapping, cost = analysis.mappings["neurons"], analysis.costs["neurons"]
    spikes = rates(graph, mapping, act).spikes
    paper_by_layer = _paper_by_layer(graph, analysis.paper, mapping)
    total = cost.dynamic_energy_pj
    layers = []
    for name, layer in mapping.layers.items():
        energy = sum(cost.layer_energy_pj[name].values())
        s = float(spikes[name].sum())
        paper_sops, paper_e = paper_by_layer.get(name, (0.0, 0.0))
        layers.append({
            "name": name, "kind": layer.kind, "node": layer.node, "placement": layer.placement,
            "shape": list(layer.shape),
            "neurons": layer.neurons, "synapses": layer.synapses, "stored_synapses": layer.stored_synapses,
            "cores": len(layer.cores), "tile": list(layer.tile), "limited_by": layer.limited_by,
            "depth": layer.depth, "spikes": s, "firing_rate": s / (layer.neurons * act.T),
            "synaptic_ops": cost.layer_synops[name], "energy_pj": energy,
            "energy_share": energy / total if total else 0.0, "paper_sops": paper_sops, "paper_energy_pj": paper_e,
        })
    profile = analysis.profile
    utilisation = [c.utilisation(profile) for c in mapping.cores]
    cores = [{"index": c.index, "layer": c.population, "box": list(c.box), "chip": c.chip, "tile": list(c.tile),
              "neurons": c.neurons,
              "fan_in": c.fan_in, "fan_out": c.fan_out, "synapses": c.synapses, "memory_bits": c.memory_bits,
              "synaptic_ops": float(cost.core_synops[c.index]), "utilisation": u}
             for c, u in zip(mapping.cores, utilisation)]
    manifest = bundle.manifest
    per_second = 1 / act.backend_s if act.backend_s else 0.0
    report = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "snn-deploy", "version": __version__},
        "bundle": {"path": str(bundle.path), "arch": manifest.get("arch"), "target": manifest.get("target", ""),
                   "T": graph.T, "input_shape": list(graph.input.shape),
                   "pipeline_latency_steps": max(graph.depths().values())},
        "run": {"provenance": "simulated", "dataset": dataset, "split": split, "samples": act.samples,
                "backend": act.backend, "processes": act.processes, "accuracy": act.accuracy,
                "backend_seconds": act.backend_s, "samples_per_s": act.samples * per_second,
                "steps_per_s": act.samples * act.T * per_second},
        "profile": {"name": profile.name, "limits": profile.limits(), "sources": list(profile.sources)},
        "mapping": {"provenance": "estimated", "spike_products": mapping.products, "sums": mapping.sums,
                    "kernel_sharing": mapping.kernel_sharing, "cores": len(mapping.cores), "chips": mapping.chips,
                    "tiles": mapping.tiles_used,
                    "utilisation": {m: _spread(np.array([u[m] for u in utilisation])) for m in METRICS},
                    "violations": [{"layer": p.node, "what": p.what, "fix": p.fix} for p in mapping.violations]},
        "hardware": {m: _cost_json(analysis.mappings[m], analysis.costs[m]) for m in PRODUCT_MODELS},
        "paper_45nm": {"provenance": "paper", "energy_pj": analysis.paper.energy_pj, "sops": analysis.paper.sops,
                       "mac_flops": analysis.paper.mac_flops,
                       "constants": {k: _figure(f) for k, f in analysis.paper.constants.items()},
                       "layers": [asdict(layer) for layer in analysis.paper.layers], "notes": PAPER_NOTES},
        "layers": layers,
        "cores": cores,
    }
    errors = validate(report, schema())
    if errors:  # a bug here, not a user error: the schema is the contract
        raise AssertionError("report does not match its schema: " + "; ".join(errors[:5]))
    return report


# --- views ------------------------------------------------------------------------------------------------------

def csv_text(report: dict[str, Any]) -> str:
    """``layers.csv``: one row per layer (population), the shape and tile as ``CxHxW``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for layer in report["layers"]:
        writer.writerow({k: "x".join(map(str, v)) if isinstance(v, list) else v for k, v in layer.items()})
    return out.getvalue()


def _si(value: float, unit: str) -> str:
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


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


def console_table(report: dict[str, Any]):
    """Per layer: shape, neurons, synapses, cores, firing rate, synaptic ops and share of the energy."""
    from rich.table import Table

    hw = report["hardware"]["neurons"]
    table = Table(title=f"{report['bundle']['path']} on {report['profile']['name']} ({hw['provenance']}; spike "
                        "products as coincidence neurons; energy share: of the dynamic energy)")
    for column in ("layer", "shape", "neurons", "synapses", "cores", "firing rate", "SOPs", "energy"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for layer in report["layers"]:
        table.add_row(layer["name"], "x".join(map(str, layer["shape"])), f"{layer['neurons']:,}",
                      f"{layer['synapses']:,}", _cores_text(layer), f"{layer['firing_rate']:.3f}",
                      _si(layer["synaptic_ops"], ""), f"{100 * layer['energy_share']:.1f} %")
    table.caption = (f"{hw['cores']} cores on {hw['chips']} chip(s); {energy_text(hw['energy_pj_total'])} "
                     f"({hw['labels']['total_energy']}) and {time_text(hw['latency_ns'])} ({hw['labels']['time']}) "
                     "per inference")
    return table


def plots(report: dict[str, Any], activity: Activity) -> dict[str, bytes]:
    """PNG images of :data:`PLOTS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    out = {}

    def save(fig, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    height = max(3.0, 0.22 * len(names) + 1)
    fig, ax = plt.subplots(figsize=(8, height))
    ax.barh(range(len(names)), [layer["firing_rate"] for layer in layers], color="tab:blue")
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("spikes per neuron and step (simulated)")
    ax.set_title("Firing rate per layer")
    save(fig, "firing_rate")

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, height), gridspec_kw={"width_ratios": [1, 2]})
    for model, color in (("neurons", "tab:orange"), ("embedded", "tab:green")):
        energy = report["hardware"][model]["energy_pj"]
        offset = 0.2 if model == "embedded" else -0.2
        left.barh(np.arange(len(COMPONENTS)) + offset, [energy[k] / 1e6 for k in COMPONENTS], height=0.4,
                  color=color, label=f"spike products: {model}")
    left.set_yticks(range(len(COMPONENTS)), [k.replace("_", " ") for k in COMPONENTS], fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("uJ per inference (estimated)")
    left.legend(fontsize=7)
    left.set_title("Energy by component")
    right.barh(range(len(names)), [100 * layer["energy_share"] for layer in layers], color="tab:orange")
    right.set_yticks(range(len(names)), names, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel("% of the energy per inference (coincidence-neuron model)")
    right.set_title("Energy by layer")
    save(fig, "energy_breakdown")

    fig, ax = plt.subplots(figsize=(10, 4))
    index = [c["index"] for c in report["cores"]]
    for metric in METRICS:
        ax.plot(index, [100 * c["utilisation"][metric] for c in report["cores"]], ".", label=metric, markersize=4)
    ax.axhline(100, color="black", linewidth=0.8)
    ax.set_xlabel("core")
    ax.set_ylabel("% of the per-core limit")
    ax.set_title(f"Core utilisation on {report['profile']['name']} ({len(index)} cores)")
    ax.legend(fontsize=8)
    save(fig, "core_utilisation")

    fig, ax = plt.subplots(figsize=(10, 4))
    raster = activity.raster
    if raster is not None and len(raster.neurons):
        ax.eventplot([np.nonzero(row)[0] for row in raster.spikes], colors="black", linelengths=0.8)
        ax.set_yticks(range(len(raster.neurons)), [f"{n}[{i}]" for n, i in raster.neurons], fontsize=5)
        for boundary in range(activity.T, raster.spikes.shape[1], activity.T):
            ax.axvline(boundary - 0.5, color="tab:red", linewidth=0.5)
    ax.set_xlabel(f"step (samples back to back, T = {activity.T})")
    ax.set_title("Spike raster of the most active neurons of a few layers (simulated)")
    save(fig, "spike_raster")
    return out


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_text(report: dict[str, Any], images: dict[str, bytes]) -> str:
    """One self-contained page: summary, violations, plots as inline PNGs, tables, constants with sources."""
    run, hw, paper = report["run"], report["hardware"], report["paper_45nm"]
    summary = [
        ["accuracy (simulated)", (f"{100 * run['accuracy']:.2f} % on {run['samples']} {run['dataset']} "
                                  f"{run['split']} samples" if run["accuracy"] is not None
                                  else "none (no classifier readout, or no labels)")],
        *[[f"energy per inference (spike products: {m}; {hw[m]['labels']['total_energy']})",
           f"{energy_text(hw[m]['energy_pj_total'])} ({energy_text(hw[m]['energy_pj_static'])} static)"] for m in hw],
        *[[f"latency per inference ({m}; {hw[m]['labels']['time']})", time_text(hw[m]["latency_ns"])] for m in hw],
        *[[f"throughput streamed ({m}; {hw[m]['labels']['time']})", f"{hw[m]['samples_per_s']:.4g} samples/s"]
          for m in hw],
        ["energy per inference (45 nm paper convention)", energy_text(paper["energy_pj"])],
        ["SOPs per inference (45 nm paper convention)", _si(paper["sops"], "")],
        ["cores / chips", f"{report['mapping']['cores']} / {report['mapping']['chips']}"],
        ["mapping", (f"residual sums: {report['mapping']['sums']}, kernel sharing: "
                     f"{report['mapping']['kernel_sharing']}, layers: spike products as coincidence neurons")],
        ["simulator throughput", (f"{run['samples_per_s']:.3g} samples/s, {run['steps_per_s']:.3g} steps/s "
                                  f"({run['backend']}, {run['processes']} process(es))")],
    ]
    violations = report["mapping"]["violations"]
    pictures = "".join(f'<figure><img alt="{name}" src="data:image/png;base64,'
                       f'{base64.b64encode(images[name]).decode()}"><figcaption>{name}</figcaption></figure>'
                       for name in PLOTS)
    layer_rows = [[la["name"], "x".join(map(str, la["shape"])), la["neurons"], la["synapses"], _cores_text(la),
                   la["limited_by"] or "", f"{la['firing_rate']:.4f}", _si(la["synaptic_ops"], ""),
                   f"{100 * la['energy_share']:.1f} %", _si(la["paper_sops"], "")] for la in report["layers"]]
    energy_rows = [[k.replace("_", " "), *(energy_text(hw[m]["energy_pj"][k]) for m in hw)] for k in COMPONENTS]
    constants = {**hw["neurons"]["constants"], **{f"45nm.{k}": v for k, v in paper["constants"].items()}}
    constant_rows = [[k, f"{v['value']:.4g} {v['unit']}", "estimated" if v["estimated"] else "published",
                      v["source"]] for k, v in constants.items()]
    limit_rows = [[k, v["value"], v["unit"], "estimated" if v["estimated"] else "published", v["source"]]
                  for k, v in report["profile"]["limits"].items()]
    notes = sorted({*hw["neurons"]["notes"], *hw["embedded"]["notes"], *paper["notes"]})
    style = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}img{max-width:100%}"
             ".bad{color:#a00}")
    return "".join([
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">",
        f"<title>snn-deploy report: {html.escape(report['bundle']['path'])}</title><style>{style}</style></head><body>",
        f"<h1>Hardware report: {html.escape(report['bundle']['path'])}</h1>",
        (f"<p>target profile {html.escape(report['profile']['name'])}, T = {report['bundle']['T']}, "
         f"snn-deploy {html.escape(report['tool']['version'])}, schema version {report['schema_version']}</p>"),
        _table(["", "value"], summary),
        f"<h2>Violations ({len(violations)})</h2>",
        ("<ul>" + "".join(f"<li class=\"bad\">{html.escape(v['layer'])}: {html.escape(v['what'])} "
                          f"({html.escape(v['fix'])})</li>" for v in violations) + "</ul>") if violations
        else "<p>none: every layer fits the target's per-core limits</p>",
        "<h2>Plots</h2>", pictures,
        "<h2>Layers (coincidence-neuron model of spike products)</h2>",
        _table(["layer", "shape", "neurons", "synapses", "cores", "limited by", "firing rate", "SOPs (simulated)",
                "energy share", "SOPs (45 nm convention)"], layer_rows),
        "<h2>Energy per inference by component (estimated)</h2>",
        _table(["component", *[f"spike products: {m}" for m in hw]], energy_rows),
        "<h2>Constants</h2>", _table(["name", "value", "status", "source"], constant_rows),
        "<h2>Profile limits</h2>", _table(["limit", "value", "unit", "status", "source"], limit_rows),
        "<h2>Notes</h2><ul>", "".join(f"<li>{html.escape(n)}</li>" for n in notes), "</ul>",
        "</body></html>\n",
    ])


def write_dir(out: Path, files: dict[str, bytes], *, force: bool) -> Path:
    """Write ``files`` into directory ``out`` atomically (see :func:`snn_deploy.io.atomic_directory`)."""
    with atomic_directory(out, force=force) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
            (tmp / name).chmod(default_mode())
    return Path(out)


def report_files(report: dict[str, Any], activity: Activity) -> dict[str, bytes]:
    """Every file of a report directory."""
    images = plots(report, activity)
    files = {"report.json": (json.dumps(report, indent=2, sort_keys=True) + "\n").encode(),
             SCHEMA_FILE: (json.dumps(schema(), indent=2) + "\n").encode(),
             "layers.csv": csv_text(report).encode(), "report.html": html_text(report, images).encode()}
    files.update({f"{name}.png": data for name, data in images.items()})
    return files
