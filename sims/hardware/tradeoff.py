"""Every lowering of a network's spike products priced side by side: the rows of the deployment trade-off table
(``benchmarks/loihi2_deployment.py``, at a stated rate) and of a report's "spike-product lowerings" section (at
the report's simulated activity).

Why one module: both price each lowering with the same :func:`~snn_deploy.sims.hardware.mapper.map_graph` and
:func:`~snn_deploy.sims.hardware.cost.hardware_cost` every report uses, and mark the same rows Pareto-optimal.

A row is Pareto-optimal (``pareto``) when no other :func:`eligible` row of the same network is at least as good on
chips, latency (one inference alone, ms) and total energy and better on one. Eligible: complete figures and no
violations. Rows whose figures leave work out (``embedded``: the x86 cores' time and energy are not modelled) are
``partial``; rows with violations are not exact on the chip (a lowering refused by name, e.g. token-serial where
the LIFs do not hold their state); both are shown, never marked Pareto-optimal, and never dominate another row.
"""

from __future__ import annotations

import gc

from snn_deploy.graph import Activity, Graph, HardwareProfile
from snn_deploy.sims.hardware.auto import Priced, price
from snn_deploy.sims.hardware.bound import resource_bound
from snn_deploy.sims.hardware.cost import HardwareCost, hardware_cost
from snn_deploy.sims.hardware.mapper import Mapping, map_graph


def lowering_row(config: str, attention: str, graph: Graph, profile: HardwareProfile, products: str,
                 activity: Activity, *, mapped: tuple[Mapping, HardwareCost] | None = None,
                 known: dict[str, Priced] | None = None) -> tuple[dict, dict]:
    """(the fixed-key row, its details) of ``graph`` with its spike products lowered as ``products`` on
    ``profile`` (``mapped``: already mapped and costed); its figures are added to ``known`` for ``auto``'s
    search. Row keys: ``config, attention, cores, chips, lower_bound_cores, latency_steps`` (pipeline depth in chip
    ticks), ``time_per_inference_ms`` (streamed), ``energy_mJ {dynamic, static, total}, violations``."""
    mapping, cost = mapped or (None, None)
    if mapping is None:
        mapping = map_graph(graph, profile, products=products)
        cost = hardware_cost(graph, mapping, activity)
    if known is not None:
        known[products] = price(graph, profile, activity, products, (mapping, cost))
    bound = resource_bound(mapping)
    partial = cost.embedded_accumulates is not None
    row = {"config": config, "attention": attention, "cores": len(mapping.cores), "chips": mapping.chips,
           "lower_bound_cores": bound.cores, "latency_steps": mapping.pipeline_depth,
           "time_per_inference_ms": cost.time_per_sample_ns / 1e6,
           "energy_mJ": {"dynamic": cost.dynamic_energy_pj / 1e9, "static": cost.static_energy_pj / 1e9,
                         "total": cost.energy_total_pj / 1e9},
           "violations": [f"{v.node}: {v.what}" for v in mapping.violations]}
    details = {"config": config, "attention": attention, "products": products, "partial": partial,
               "provenance": "partial" if partial else ("calibrated" if profile.calibration else "estimated"),
               "latency_ms": cost.latency_ns / 1e6, "ticks_per_step": cost.ticks_per_step,
               "ticks": int(cost.tick_ns["total"].size), "static_modelled": cost.static_modelled,
               "bound": bound.json(mapping), "worst_population": dict(zip(("name", "ratio"), bound.worst(mapping))),
               "labels": {"mapping": f"estimated ({profile.name} compiler model)", **cost.labels}}
    if mapped is None:
        del mapping, cost
        gc.collect()
    return row, details


def eligible(row: dict, details: dict) -> bool:
    """Whether a row's figures are complete and its lowering exact on the chip (no violations)."""
    return not details["partial"] and not row["violations"]


def mark_pareto(rows: list[dict], details: list[dict]) -> None:
    """``pareto`` on every :func:`eligible` row no other eligible row dominates on chips, latency (one inference
    alone, ms: what ``--optimize latency`` minimises) and total energy, fewer being better."""
    def key(r: dict, d: dict) -> tuple:
        return (r["chips"], d["latency_ms"], r["energy_mJ"]["total"])

    keys = [key(r, d) for r, d in zip(rows, details) if eligible(r, d)]
    for r, d in zip(rows, details):
        k = key(r, d)
        d["pareto"] = eligible(r, d) and not any(all(a <= b for a, b in zip(o, k)) and o != k for o in keys)
