"""The report's plots, drawn from ``report.json`` (plus the spike raster of the run) with matplotlib.

Why these rules: a report must stay readable from a 4-layer to a 100-layer model. Every per-layer plot is a
horizontal bar chart whose height grows with the layer count (one label row per layer, never overlapping); bar
axes are linear, because the ratios between bars are what a reader compares (a logarithmic axis makes 62:1 look like
4:1), and every bar is labelled with its value so small ones stay readable; the utilisation heatmap prints every
cell's percentage; timeline lines are drawn only for parts above 1 % of a tick somewhere (the others are named); every figure is its own
image (no panel draws over another) and has a caption saying what it shows and where the numbers come from.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from snn_deploy.graph import Activity
from snn_deploy.graph.hardware import lowering_name
from snn_deploy.sims.hardware.mapper import METRICS
from snn_deploy.sims.hardware.timing import TERM_LABELS

PLOTS = ("layer_time", "timeline", "energy_layers", "energy_components", "core_utilisation", "firing_rate",
         "spike_raster")
CAPTIONS = {
    "layer_time": "Busy time per step of each layer's slowest core (the cost model's time: calibrated or "
                  "estimated, as the summary says), coloured by what limits that core (synaptic ops, neuron updates, "
                  "spike messages sent or received); the dashed line is the whole step (slowest core or mesh link, "
                  "plus the barrier). Layers run in parallel: the longest bar sets the step.",
    "timeline": "Time of every step (tick) of one inference on its own (bars), and the parts of the "
                "cost model that make it (lines: e.g. the slowest core's compute, spike routing, the barrier). The "
                "first ticks fill the pipeline (layer depth), the last ones drain it.",
    "energy_layers": "Dynamic energy per inference of each layer (synaptic ops, neuron updates and the spike "
                     "messages it sends); static energy is per chip, in section 3.",
    "energy_components": "Dynamic energy per inference by component.",
    "core_utilisation": "Fullest core of each layer as a percentage of the profile's per-core limits (neurons, "
                        "synaptic memory, fan-in, fan-out); above 100 % is a violation.",
    "firing_rate": "Simulated spikes per neuron and step of each layer (graded spikes: non-zero values).",
    "spike_raster": "Spikes of the most active neurons of a few layers over the first test samples (simulated); "
                    "red lines separate samples.",
}
PRODUCT_CAPTIONS = {
    "energy_layers": " Spike products in the {lowering} lowering (export --attention).",
    "energy_components": " Both models of the spike products: the {lowering} lowering on neurocores, or embedded "
                         "cores (partial: their x86 work is not modelled).",
}
"""Added to a caption where the network has spike products."""


def caption(name: str, products: bool, lowering: str = "coincidence") -> str:
    """The caption of plot ``name``; spike-product sentences (naming their ``lowering``) only where the network has
    spike products."""
    return CAPTIONS[name] + (PRODUCT_CAPTIONS.get(name, "").format(lowering=lowering) if products else "")


TERM_COLOURS = {"synaptic_ops": "tab:blue", "neuron_updates": "tab:orange", "spikes_out": "tab:green",
                "spikes_in": "tab:purple"}
NEGLIGIBLE = 0.01
"""A timeline part under this share of the longest tick throughout is named in the legend, not drawn on the axis."""
ROW_INCHES = 0.19
"""Height of one layer row: a 7-point label fits without overlapping its neighbours."""
MARGIN_INCHES = (0.8, 0.7)
"""Above (title, legend) and below (axis label) the rows of a per-layer plot."""


def _label_bars(ax, bars, values) -> None:
    """Each bar's value at its end (linear axes: the small bars stay readable as numbers)."""
    ax.bar_label(bars, [f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" for v in values], fontsize=6, padding=2)
    ax.margins(x=0.12)


def _height(rows: int) -> float:
    return ROW_INCHES * max(rows, 8) + MARGIN_INCHES[0] + MARGIN_INCHES[1]


def _fix_rows(fig, rows: int) -> None:
    """Margins in inches, so the axes get exactly :data:`ROW_INCHES` per row (at least 8 rows)."""
    height = _height(rows)
    fig.subplots_adjust(top=1 - MARGIN_INCHES[0] / height, bottom=MARGIN_INCHES[1] / height)


def _layer_axes(plt, names: list[str], width: float = 9.0):
    """A figure with one labelled row per layer, top to bottom in network order."""
    fig, ax = plt.subplots(figsize=(width, _height(len(names))))
    _fix_rows(fig, len(names))
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    return fig, ax


def render(report: dict[str, Any], activity: Activity) -> dict[str, bytes]:
    """PNG images of :data:`PLOTS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    layers = report["layers"]
    names = [layer["name"] for layer in layers]
    rows = np.arange(len(names))
    out = {}

    def save(fig, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        out[name] = buf.getvalue()

    fig, ax = _layer_axes(plt, names)
    times = [layer["time_per_step_ns"] for layer in layers]
    colours = [TERM_COLOURS.get(layer["time_limited_by"], "lightgrey") for layer in layers]
    bars = ax.barh(rows, [t / 1e3 for t in times], color=colours)
    _label_bars(ax, bars, [t / 1e3 for t in times])
    ax.axvline(report["timing"]["step_ns"] / 1e3, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel(f"us per step ({report['timing']['provenance']})")
    terms = report["timing"]["terms"]
    ax.legend(handles=[Patch(color=TERM_COLOURS[t], label=f"limited by {TERM_LABELS[t]}") for t in terms]
              + [plt.Line2D([], [], color="black", linestyle="--", label="step")], fontsize=7, ncol=3,
              loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_title("Time per step by layer (slowest core)", pad=34)
    save(fig, "layer_time")

    timeline = report["timing"]["timeline_ns"]
    ticks = np.arange(len(timeline["total"]))
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(ticks, np.array(timeline["total"]) / 1e3, color="lightsteelblue", width=0.8, label="tick time")
    peak = max(timeline["total"], default=0.0)
    zero = [part for part, values in timeline.items()  # lines that would lie on the axis, named instead
            if part != "total" and max(values, default=0.0) < NEGLIGIBLE * peak]
    for part, values in timeline.items():
        if part != "total" and part not in zero:
            ax.plot(ticks, np.array(values) / 1e3, marker=".", linewidth=1, label=part.replace("_", " "))
    ax.axvspan(-0.5, report["bundle"]["T"] - 0.5, color="tab:orange", alpha=0.08, label="input steps")
    ax.set_xlabel(f"tick (T = {report['bundle']['T']} input steps + {len(ticks) - report['bundle']['T']} to drain "
                  "the pipeline)")
    ax.set_ylabel(f"us ({report['timing']['provenance']})")
    if len(ticks) <= 40:
        ax.set_xticks(ticks)
    ax.legend(fontsize=7, title=("under 1 % of a tick\nthroughout: " + ", ".join(p.replace("_", " ") for p in zero))
              if zero else None, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # off the bars
    ax.set_title("Timeline of one inference")
    save(fig, "timeline")

    fig, ax = _layer_axes(plt, names)
    energy = [layer["energy_pj"] / 1e3 for layer in layers]
    _label_bars(ax, ax.barh(rows, energy, color="tab:orange"), energy)
    ax.set_xlabel(f"nJ per inference ({report['hardware']['neurons']['provenance']}, dynamic)")
    ax.set_title("Energy by layer")
    save(fig, "energy_layers")

    components = list(report["hardware"]["neurons"]["energy_pj"])
    fig, ax = plt.subplots(figsize=(9, 3.2))
    products = report["bundle"]["spike_products"] > 0  # one model to show where the network has no spike products
    models = (("neurons", "tab:orange"), ("embedded", "tab:green")) if products else (("neurons", "tab:orange"),)
    for offset, (model, colour) in zip((-0.2, 0.2) if products else (0.0,), models):
        energy = [report["hardware"][model]["energy_pj"][k] / 1e3 for k in components]
        bars = ax.barh(np.arange(len(components)) + offset, energy, height=0.4 if products else 0.6, color=colour,
                       label="spike products: " + (
                           f"{lowering_name(report['hardware'][model]['spike_products'])} lowering"
                           if model == "neurons" else "embedded cores"))
        _label_bars(ax, bars, energy)
    ax.set_yticks(range(len(components)), [k.replace("_", " ") for k in components], fontsize=8)
    ax.set_ylim(len(components) - 0.5, -0.5)
    ax.set_xlabel(f"nJ per inference ({report['hardware']['neurons']['provenance']}, dynamic)")
    if products:
        ax.legend(fontsize=7)
    ax.set_title("Energy by component")
    save(fig, "energy_components")

    fullest = np.zeros((len(layers), len(METRICS)))
    index = {name: i for i, name in enumerate(names)}
    for core in report["cores"]:
        i = index[core["layer"]]
        fullest[i] = np.maximum(fullest[i], [100 * core["utilisation"][m] for m in METRICS])
    fig, ax = plt.subplots(figsize=(6.5, _height(len(names))))
    _fix_rows(fig, len(names))
    image = ax.imshow(fullest, aspect="auto", cmap="viridis", vmin=0, vmax=max(100.0, float(fullest.max())))
    ax.set_yticks(rows, names, fontsize=7)
    ax.set_xticks(range(len(METRICS)), [m.replace("_", "-") for m in METRICS], fontsize=8)
    for (i, j), v in np.ndenumerate(fullest):  # one row per layer (ROW_INCHES): a 6-point number fits any count
        ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=6, color="white" if v < 60 else "black")
    fig.colorbar(image, ax=ax, label="% of the per-core limit", shrink=min(1.0, 12 / max(len(names), 1)) ** 0.5)
    ax.set_title(f"Fullest core per layer on {report['profile']['name']} ({len(report['cores'])} cores)")
    save(fig, "core_utilisation")

    fig, ax = _layer_axes(plt, names)
    rates = [layer["firing_rate"] for layer in layers]
    _label_bars(ax, ax.barh(rows, rates, color="tab:blue"), rates)
    ax.set_xlabel("spikes per neuron and step (simulated)")
    ax.set_title("Firing rate by layer")
    save(fig, "firing_rate")

    save(_raster(plt, activity), "spike_raster")
    return out


def _raster(plt, activity: Activity):
    """One band per layer (its most active neurons), labelled once per layer."""
    raster = activity.raster
    fig, ax = plt.subplots(figsize=(9, 4))
    if raster is not None and len(raster.neurons):
        ax.eventplot([np.nonzero(row)[0] for row in raster.spikes], colors="black", linelengths=0.8, linewidths=0.8)
        layer_rows: dict[str, list[int]] = {}
        for i, (layer, _) in enumerate(raster.neurons):
            layer_rows.setdefault(layer, []).append(i)
        ax.set_yticks([np.mean(r) for r in layer_rows.values()], list(layer_rows), fontsize=7)
        for r in list(layer_rows.values())[1:]:
            ax.axhline(r[0] - 0.5, color="tab:grey", linewidth=0.5)
        for boundary in range(activity.T, raster.spikes.shape[1], activity.T):
            ax.axvline(boundary - 0.5, color="tab:red", linewidth=0.5)
        ax.set_ylim(len(raster.neurons) - 0.5, -0.5)
    ax.set_xlabel(f"step (samples back to back, T = {activity.T})")
    ax.set_title("Spike raster: most active neurons of a few layers")
    return fig


TRADEOFF_CAPTION = ("Chips against latency (one inference on its own, ms) of each lowering of the spike products, one "
                    "panel per configuration; filled: Pareto-optimal on chips, latency and energy; hollow: "
                    "dominated; grey: not eligible (partial figures - work the model leaves out, e.g. embedded x86 "
                    "cores - or violations: not exact on the chip). Cores and chips estimated by the mapper; latency "
                    "calibrated on PilotNet LIF (an extrapolation here).")


LOWERINGS_CAPTION = ("Chips against latency (one inference on its own, ms) of each lowering of this network's spike "
                     "products, mapped and costed like the report's main figures at the simulated activity; the "
                     "exported lowering is labelled so. Filled: Pareto-optimal on chips, latency and energy; hollow: "
                     "dominated; grey: not eligible (partial figures - embedded x86 cores, not modelled - or "
                     "violations: not exact on the chip). Cores and chips estimated by the mapper; latency as the "
                     "report's time figures (calibrated on PilotNet LIF: an extrapolation here).")


def lowerings(report: dict[str, Any]) -> bytes:
    """:func:`tradeoff` with one panel: the report's ``lowerings`` section (the bundle on its profile)."""
    section = report["lowerings"]
    rows = [{**r, "attention": r["attention"] + (" (exported)" if r["exported"] else "")} for r in section["rows"]]
    name = report["bundle"]["arch"] or report["bundle"]["path"]
    return tradeoff([{"config": f"{name} on {section['profile']}", "rows": rows}], columns=1, panel=(8.0, 3.6),
                    cores=True)


def tradeoff(configs: list[dict[str, Any]], columns: int = 4, panel: tuple[float, float] = (3.6, 2.9),
             cores: bool = False) -> bytes:
    """One panel per configuration (its own axes: configurations span 1 to 1,000+ chips): chips (linear from 0,
    so a saving reads as the ratio it is) against latency in ms, one labelled point per lowering. ``configs``:
    dicts with ``config`` and ``rows`` (``attention``, ``chips``, ``latency_ms``, ``pareto``, ``partial``,
    ``violations``; ``cores`` with ``cores=True``: labels then give chips and cores). ``panel``: inches per
    panel. Labels of neighbouring points (by latency) sit at staggered heights, so close points stay readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = max(len(configs), 1)
    cols = min(columns, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    names = sorted({r["attention"] for c in configs for r in c["rows"]})
    for ax, config in zip(axes.ravel(), configs):
        points: dict[tuple, list[dict]] = {}
        latencies = [r["latency_ms"] for r in config["rows"]] or [0.0]
        step = max((max(latencies) - min(latencies)) / 100, 1e-9)
        for r in config["rows"]:  # rows at one point (auto choosing a single lowering, or within 1 % of the
            # panel's latency range: they overlap on the axis) share one marker and one label
            points.setdefault((round(r["latency_ms"] / step), r["chips"]), []).append(r)
        for i, ((_, chips), same) in enumerate(sorted(points.items())):
            latency = same[0]["latency_ms"]
            first = next((r for r in same if not r["attention"].startswith("auto")), same[0])
            grey = first["partial"] or first["violations"]
            colour = "0.6" if grey else colours(names.index(first["attention"]) % 10)
            pareto = any(r["pareto"] for r in same)
            ax.scatter(latency, chips, s=46, color=colour if pareto else "none", edgecolors=colour,
                       linewidths=1.5, zorder=3)
            plain = [r["attention"] + (f" ({r['cores']:,} cores)" if cores else "") for r in same
                     if not r["attention"].startswith("auto")]
            auto = [r["attention"][6:-1] for r in same if r["attention"].startswith("auto (")]
            label = ", ".join(plain + ([f"auto: {'/'.join(auto)}"] if auto else []))
            ax.annotate(f"{label}: {chips}" + (" chip(s)" if cores else ""), (latency, chips), fontsize=7, xytext=(4, 3 + 10 * (i % 3)),
                        textcoords="offset points")
        ax.set_ylim(0, max(chips for _, chips in points) * 1.25)
        ax.set_title(config["config"], fontsize=8)
        ax.set_xlabel("latency, one inference (ms)", fontsize=7)
        ax.set_ylabel("chips", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.margins(x=0.35)
    for ax in axes.ravel()[len(configs):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
