"""The trade-off table of Loihi 2 deployments: for every published zoo configuration and every lowering of its
spike products, cores, chips, the resource lower bound, pipeline latency, time and energy per inference.

    python benchmarks/loihi2_deployment.py [--rate 0.1] [--configs NAME,...] [--attention NAME,...]
        [--auto cores,latency,energy [--auto-configs NAME,...]] [--markdown FILE] [--plot FILE.png] [--json FILE]

Per configuration: the model is built with random weights (seed 0; only the graph's structure and weight widths
matter here, not its activity), quantized and lowered to the deployed graph exactly as ``snn-deploy export
--target loihi2`` does (QKFormer with ``--rewrite maxpool-after-lif``, which its blocking analog max-pools need).
Then, for every lowering of the spike products in the registry (:data:`~snn_deploy.graph.hardware.PRODUCT_MODELS`,
or ``--attention``), the graph is mapped with the Loihi 2 profile (compiler model derived from Intel's compiler
output, estimated), its resource lower bound computed (``sims/hardware/bound.py``) and it is costed at a stated
firing rate (``sims/hardware/stated_activity.py``: every neuron fires with probability ``--rate`` per step,
independently; the analog input sends every pixel every step), not simulated. ``--auto`` adds one row per
objective: ``--attention auto --optimize OBJECTIVE``'s per-product choice (``sims/hardware/auto.py``).

Rows are Pareto-optimal (``pareto`` in the JSON details, ``*`` in the table; ``sims/hardware/tradeoff.py``, shared
with the report's "spike-product lowerings" section) when no other eligible row of the
same configuration is at least as good on chips, latency (one inference alone, ms) and energy and better on one.
Eligible: complete figures and no violations. Rows whose figures leave work out (``embedded``: the x86 cores' time
and energy are not modelled) are ``partial``, rows with violations are not exact on the chip (a lowering refused by
name); both are shown, never marked Pareto-optimal, and never dominate another row. ``latency_steps`` is the
pipeline depth in chip ticks (a step is one tick except in a lowering with sub-steps, token-serial).

``--json FILE``: ``{"rows": [{"config", "attention", "cores", "chips", "lower_bound_cores", "latency_steps",
"time_per_inference_ms", "energy_mJ": {"dynamic", "static", "total"}, "violations"}]}`` (keys fixed), plus
``details`` (one per row, same order: Pareto flag, provenance, global bound, mapper / bound per population kind,
latency in ms) and ``schema_version`` and ``rate``. The file is rewritten after every configuration, so an
interrupted run keeps what it finished.
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
from snn_deploy.exporters.frontends.model_file import apply_rewrites, blocking_problems
from snn_deploy.exporters.frontends.zoo import lower
from snn_deploy.graph import LOIHI2, Graph
from snn_deploy.graph.hardware import PRODUCT_MODELS
from snn_deploy.quant import quantize
from snn_deploy.sims.hardware import plots
from snn_deploy.sims.hardware.auto import OBJECTIVES, Priced, choose
from snn_deploy.sims.hardware.bound import RESOURCE_LABELS
from snn_deploy.sims.hardware.stated_activity import stated_activity
from snn_deploy.sims.hardware.tradeoff import eligible, lowering_row, mark_pareto

REWRITE = "maxpool-after-lif"
SCHEMA_VERSION = 2
BASELINE = {  # main at 9e37026 (docs/loihi2_deployment.md before issue 18): spike products as coincidence neurons,
    # rate 0.1: (cores, chips, total energy mJ)
    "spikformer-8-384": (49583, 388, 779), "spikformer-6-512": (50002, 391, 1390),
    "spikformer-8-512": (66024, 516, 1850), "spikformer-10-512": (82046, 641, 2320),
    "spikformer-8-768": (99187, 775, 3080), "spikformer-cifar10-4-256": (2356, 19, 16.2),
    "spikformer-cifar10-2-384": (1872, 15, 15.5), "spikformer-cifar10-4-384": (3568, 28, 35.2),
    "spikformer-cifar100-4-384": (3568, 28, 35.2), "spikformer-cifar10dvs-2-256": (932, 8, 30.2),
    "qkformer-10-384": (46011, 360, 1050), "qkformer-10-512": (61195, 479, 1870),
    "qkformer-10-768": (91994, 719, 5030), "qkformer-cifar10-4-384": (3379, 27, 66.9),
    "qkformer-cifar100-4-384": (3379, 27, 66.9), "qkformer-cifar10dvs-2-256": (793, 7, 55.4),
    "qkformer-dvs128-2-256": (829, 7, 58.5), "spikformer-v2-8-512": (66757, 522, 1650),
    "spikformer-v2-16-768": (197582, 1544, 1780),
}
"""Today's figures the issue's goals are measured against (the old table, same command, same rate)."""
BOARD_CHIPS = 8
"""One Kapoho Point board."""


def published() -> list[str]:
    """Every zoo configuration with a published parameter count (the papers' configurations)."""
    return [n for n in zoo.names() if zoo.spec(n).published_params is not None]


def deployed(name: str, seed: int = 0) -> tuple[Graph, list[str]]:
    """The deployed graph of zoo configuration ``name`` (random weights) and the rewrites it needed."""
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
    return graph, rewrites


def config_rows(name: str, rate: float, attentions: tuple[str, ...], objectives: tuple[str, ...]
                ) -> tuple[list[dict], list[dict], list[str]]:
    """Every lowering's row of configuration ``name`` (and one per ``auto`` objective), Pareto marked."""
    graph, rewrites = deployed(name)
    activity = stated_activity(graph, rate)
    rows, details = [], []
    known: dict[str, Priced] = {}
    for attention in attentions:
        r, d = lowering_row(name, attention, graph, LOIHI2, attention, activity, known=known)
        rows.append(r)
        details.append(d)
    for objective in objectives:
        choice = choose(graph, LOIHI2, activity, objective, attentions, known)
        r, d = lowering_row(name, f"auto ({objective})", graph, LOIHI2, choice.products, activity)
        d["auto"] = choice.manifest()
        rows.append(r)
        details.append(d)
    mark_pareto(rows, details)
    del graph, activity
    gc.collect()
    return rows, details, rewrites


def _energy(r: dict) -> str:
    e = r["energy_mJ"]
    return f"{e['total']:.3g} mJ ({e['dynamic']:.3g} + {e['static']:.3g})"


def _verdict(reached: bool, partial: bool) -> str:
    """A goal reached only by a row that leaves work out (``partial``) is not met: its figures are lower bounds."""
    if reached and partial:
        return "reached only with partial figures (the x86 work is not costed), so not met"
    return "met" if reached else "not met"


def _out_of_reach(complete: list[tuple[dict, dict]], cores: int) -> str:
    """Whether any mapper could meet a chip goal of ``cores`` with these complete, exact rows: the smallest global
    lower bound (populations sharing cores, any partition) among them against the goal's cores."""
    low = min(complete, key=lambda rd: rd[1]["bound"]["global_cores"])
    bound = low[1]["bound"]["global_cores"]
    if bound <= cores:
        return f" (the global lower bound of {low[0]['attention']}, {bound:,} cores, is within the {cores:,})"
    return (f"; out of reach for any mapper with these lowerings: the smallest global lower bound is {bound:,} "
            f"cores ({low[0]['attention']}, binding: {low[1]['bound']['global_binding']}) > {cores:,}")


def goals(rows: list[dict], details: list[dict]) -> list[str]:
    """The issue's goals, measured on these rows (only for configurations that were run)."""
    out = []
    by_config: dict[str, list[tuple[dict, dict]]] = {}
    for r, d in zip(rows, details):
        by_config.setdefault(r["config"], []).append((r, d))
    for name in ("spikformer-cifar10-4-384", "qkformer-cifar10-4-384"):
        if name not in by_config:
            continue
        exact = [rd for rd in by_config[name] if not rd[0]["violations"]] or by_config[name]
        fits = min(exact, key=lambda rd: rd[0]["chips"])
        complete = [rd for rd in by_config[name] if eligible(*rd)]
        cheapest = min(complete, key=lambda rd: rd[0]["energy_mJ"]["total"]) if complete else None
        base = BASELINE[name]
        line = (f"{name}: fewest chips without violations {fits[0]['chips']} ({fits[0]['attention']}"
                f"{', partial figures' if fits[1]['partial'] else ''}; goal <= {BOARD_CHIPS}: "
                f"{_verdict(fits[0]['chips'] <= BOARD_CHIPS, fits[1]['partial'])})")
        if complete:
            small = min(complete, key=lambda rd: rd[0]["chips"])
            line += (f"; with complete figures and no violations {small[0]['chips']} ({small[0]['attention']}: "
                     f"{'met' if small[0]['chips'] <= BOARD_CHIPS else 'not met'})")
            if small[0]["chips"] > BOARD_CHIPS:
                line += _out_of_reach(complete, BOARD_CHIPS * LOIHI2.cores_per_chip)
        if cheapest:
            e = cheapest[0]["energy_mJ"]["total"]
            line += (f"; lowest energy with complete figures and no violations {e:.3g} mJ "
                     f"({cheapest[0]['attention']}; goal below "
                     f"today's {base[2]} mJ: {'met' if e < base[2] else 'not met'})")
        out.append(line)
    for name, pairs in by_config.items():
        if name not in BASELINE or "cifar" in name or "dvs" in name:
            continue
        best = min([rd for rd in pairs if not rd[0]["violations"]] or pairs, key=lambda rd: rd[0]["chips"])
        base = BASELINE[name][1]
        line = (f"{name}: fewest chips without violations {best[0]['chips']} ({best[0]['attention']}"
                f"{', partial figures' if best[1]['partial'] else ''}) against today's {base}: "
                f"{best[0]['chips'] / base:.2f}x "
                f"(goal <= 1/3: {_verdict(3 * best[0]['chips'] <= base, best[1]['partial'])})")
        complete = [rd for rd in pairs if eligible(*rd)]
        if complete:
            small = min(complete, key=lambda rd: rd[0]["chips"])
            line += (f"; with complete figures and no violations {small[0]['chips']} ({small[0]['attention']}, "
                     f"{small[0]['chips'] / base:.2f}x: {'met' if 3 * small[0]['chips'] <= base else 'not met'})")
        out.append(line)
    ratios = [(r["cores"] / r["lower_bound_cores"], r["config"], r["attention"]) for r in rows]
    worst = max(ratios)
    out.append(f"mapper / per-population bound: at most {worst[0]:.2f}x ({worst[1]}, {worst[2]}; goal <= 1.5x: "
               f"{'met' if worst[0] <= 1.5 else 'not met'}); against the global bound (any mapper, populations "
               f"sharing cores) at most {max(r['cores'] / d['bound']['global_cores'] for r, d in zip(rows, details)):.2f}x")
    return out


def markdown(rows: list[dict], details: list[dict], rewrites: dict[str, list[str]], rate: float, command: str,
             plot: str | None) -> str:
    cal = LOIHI2.calibration
    out = ["# Loihi 2 deployments of the published zoo configurations: the trade-off table", "",
           f"Written by `{command}` (random weights, seed 0; the stated firing rate, not a simulation, drives time "
           "and energy).", "",
           f"Configurations in this file: {len(dict.fromkeys(r['config'] for r in rows))} of the "
           f"{len(published())} published ones ({', '.join(dict.fromkeys(r['config'] for r in rows))}); the others "
           "are not run here (the command without `--configs` runs them all).", "",
           "## Goals of issue 18, measured", ""]
    out += [f"- {line}" for line in goals(rows, details)]
    out += ["", "## Every lowering", "",
            "| configuration | attention | cores | lower bound (global) | cores / bound | chips | pipeline latency "
            "(steps) | time / inference (streamed; alone) | energy / inference (dynamic + static) | violations | "
            "Pareto |", "|---|---|---:|---:|---:|---:|---:|---|---|---:|:-:|"]
    for r, d in zip(rows, details):
        name = r["config"] + "".join(f" (--rewrite {w})" for w in rewrites.get(r["config"], []))
        partial = " (partial)" if d["partial"] else ""
        out.append(f"| {name} | {r['attention']} | {r['cores']:,} | {r['lower_bound_cores']:,} "
                   f"({d['bound']['global_cores']:,}) | {r['cores'] / r['lower_bound_cores']:.2f} | {r['chips']} | "
                   f"{r['latency_steps']} | {r['time_per_inference_ms']:.3g} ms; {d['latency_ms']:.3g} ms{partial} | "
                   f"{_energy(r)}{partial} | {len(r['violations'])} | {'*' if d['pareto'] else ''} |")
    out += ["", "## The mapper against the lower bound, per population kind", "",
            "Summed over every row above: the mapper's cores, the per-population bound, their ratio, and what binds "
            "the bound (populations per resource).", "",
            "| kind | cores | bound | cores / bound | worst row | binds (populations) |", "|---|---:|---:|---:|---|---|"]
    kinds: dict[str, dict] = {}
    for r, d in zip(rows, details):
        for kind, k in d["bound"]["by_kind"].items():
            agg = kinds.setdefault(kind, {"cores": 0, "bound": 0, "worst": (0.0, ""), "binding": {}})
            agg["cores"] += k["cores"]
            agg["bound"] += k["bound"]
            agg["worst"] = max(agg["worst"], (k["ratio"], f"{r['config']} {r['attention']}"))
            for res, n in k["binding"].items():
                agg["binding"][res] = agg["binding"].get(res, 0) + n
    for kind, agg in kinds.items():
        binds = ", ".join(f"{RESOURCE_LABELS[res]} {n}" for res, n in agg["binding"].items() if n)
        out.append(f"| {kind} | {agg['cores']:,} | {agg['bound']:,} | {agg['cores'] / agg['bound']:.2f} | "
                   f"{agg['worst'][1]} ({agg['worst'][0]:.2f}) | {binds} |")
    if plot:
        out += ["", f"![chips against pipeline latency per configuration]({plot})", "", plots.TRADEOFF_CAPTION]
    out += ["", "## How to read it", "",
            f"Firing rate: {rate} spikes per neuron and step for every LIF (stated, not measured; analog input: every "
            "pixel every step). The activity of a trained tiny-width equivalent was not simulated for these rows "
            "(no trained CIFAR / DVS checkpoint of the zoo's configurations is available here): every figure is at "
            "the stated rate. Cores, chips, the bound and violations: estimated (Loihi 2 compiler model, "
            "`snn_deploy/graph/profiles.py`). Lower bound: the fewest cores any mapper could use with one population "
            "per core (neurons, synaptic memory, input axons, each over the per-core limit, per population; "
            "`sims/hardware/bound.py`); in brackets the global bound, valid for any mapper, populations sharing "
            "cores or not. Time and energy: Loihi 2 figures "
            f"{cal.label('time_per_step')} (time) and {cal.label('total_energy')} (total energy) on PilotNet; "
            "applied to these networks they are extrapolations from one calibration network, not validated. "
            "Static energy: 0.232078 W per chip (measured) x chips x streamed time. Time per inference: streamed "
            "(samples back to back); alone: one inference with the pipeline filling and draining. `partial`: "
            "figures that leave work out (embedded x86 cores: Intel publishes no figures for them): a lower bound "
            "of time and energy, never marked Pareto-optimal. `auto (X)`: `--attention auto --optimize X`, the "
            "per-product choice that minimises X (a partial choice says so).", ""]
    return "\n".join(out)


def write_json(path: Path, rows: list[dict], details: list[dict], rate: float) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION, "rate": rate, "rows": rows, "details": details},
                              indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=0.1, help="spikes per neuron and step (default 0.1)")
    parser.add_argument("--configs", help="comma-separated zoo names (default: every published configuration)")
    parser.add_argument("--attention", help=f"comma-separated lowerings (default: all, {','.join(PRODUCT_MODELS)})")
    parser.add_argument("--auto", default="", help=f"objectives of auto rows, comma-separated ({','.join(OBJECTIVES)})")
    parser.add_argument("--auto-configs", help="configurations to add auto rows to (default: all run); the search "
                        "prices about 3 x (spike products) whole networks per objective")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown")
    parser.add_argument("--plot", type=Path, help="write the chips-vs-latency plot as PNG (linked from --markdown)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON")
    args = parser.parse_args(argv)
    names = args.configs.split(",") if args.configs else published()
    attentions = tuple(args.attention.split(",")) if args.attention else PRODUCT_MODELS
    objectives = tuple(o for o in args.auto.split(",") if o)
    bad = [a for a in attentions if a not in PRODUCT_MODELS] + [o for o in objectives if o not in OBJECTIVES]
    if bad:
        print(f"error: unknown lowering or objective {', '.join(bad)}; lowerings: {', '.join(PRODUCT_MODELS)}, "
              f"objectives: {', '.join(OBJECTIVES)}", file=sys.stderr)
        return 2
    rows, details, rewrites = [], [], {}
    for name in names:
        began = time.perf_counter()
        auto = objectives if not args.auto_configs or name in args.auto_configs.split(",") else ()
        r, d, rewrites[name] = config_rows(name, args.rate, attentions, auto)
        rows += r
        details += d
        for row, det in zip(r, d):
            print(f"{name:<28} {row['attention']:<18} {row['cores']:>7} cores (bound {row['lower_bound_cores']:>7}) "
                  f"{row['chips']:>5} chip(s) {row['latency_steps']:>4} steps {row['energy_mJ']['total']:9.3g} mJ"
                  f"{' partial' if det['partial'] else ''}{' *' if det['pareto'] else ''}", flush=True)
        print(f"  ({time.perf_counter() - began:.0f} s)", flush=True)
        if args.json:
            write_json(args.json, rows, details, args.rate)
    command = "python benchmarks/loihi2_deployment.py " + " ".join(argv if argv is not None else sys.argv[1:])
    plot_link = None
    if args.plot:
        configs = [{"config": n, "rows": [{**r, **d} for r, d in zip(rows, details) if r["config"] == n]}
                   for n in names]
        args.plot.write_bytes(plots.tradeoff(configs))
        plot_link = (args.plot.relative_to(args.markdown.parent).as_posix() if args.markdown and
                     args.plot.parent.resolve() == args.markdown.parent.resolve() else str(args.plot))
    table = markdown(rows, details, rewrites, args.rate, command.strip(), plot_link)
    if args.markdown:
        args.markdown.write_text(table)
    print("\n" + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
