"""How sure the hardware figures are: a low / central / high range for every calibrated time, energy and power.

Why a module of its own: a calibrated figure without a range reads as accurate. Loihi 2's scales are fitted on one
measured network, so their residual there is 0 by construction and says nothing about another workload. The range
is derived only from what is known, all of it data in the profile (:class:`snn_deploy.graph.profiles.Uncertainty`):

* the *fitted part* of a workload (its time or energy in the same mix of terms as the fit network) is off by at
  most the model error: the largest error on a validation network, or, while none exists, a published calibrated
  model's error on networks it was not fitted on;
* the *part outside the fit's mix* (total variation distance between the workload's and the fit network's shares
  of time by term, or of dynamic energy by component) can be off by the prior-to-calibration factor either way: the
  fit moved every per-operation figure by one scale, and a term the fit did not exercise may have needed the prior
  (no scale) or twice the correction;
* static power per chip ranges over the measured runs on the same board kind, and the chips it is paid for over
  the core count's range (the mapper's error on every compiler table it was checked against).

Combined figures (total energy, power, energy-delay product, throughput) use interval arithmetic on these ranges:
conservative, never narrower than their parts. Method and numbers: docs/hardware.md, "How sure: ranges".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn_deploy.graph import HardwareProfile
from snn_deploy.sims.hardware.cost import COMPONENTS, HardwareCost
from snn_deploy.sims.hardware.mapper import Mapping
from snn_deploy.sims.hardware.timing import TERMS, CoreTimes, idle_updates_ns

TIME_PARTS = (*TERMS, "links", "barrier")
"""What a streamed step's time is spent on: the slowest core's terms, mesh links beyond it, the barrier."""


def time_shares(mapping: Mapping, cost: HardwareCost, times: CoreTimes) -> dict[str, float]:
    """Share of the streamed step time in each of :data:`TIME_PARTS`: per tick, the barrier, the slowest core's
    busy time split over its terms (the terms of its slowest group, in proportion), and whatever the tick takes
    beyond them (a mesh link's load). With P ticks per step (a token-serial lowering) a core works on one tick of
    each step and updates its neurons (inactive) on the other P - 1."""
    shares = dict.fromkeys(TIME_PARTS, 0.0)
    ticks = cost.steady_tick_ns
    T = ticks.size
    if not mapping.cores or not T:
        return shares
    P = mapping.ticks_per_step
    depth = np.array([mapping.layers[c.population].depth for c in mapping.cores])
    shifted = (np.arange(T)[None, :] - depth[:, None]) % T  # a core handles step (tick - depth) / P when streamed
    step, working = shifted // P, shifted % P == 0
    idle = idle_updates_ns(mapping)[:, None]
    terms = {k: np.where(working, np.take_along_axis(v, step, 1), idle if k == "neuron_updates" else 0.0)
             for k, v in times.terms.items()}
    groups = np.stack([sum(terms[t] for t in g) for g in times.groups])  # [groups, cores, ticks]
    busy = groups.max(0)
    for k in range(T):
        core = int(busy[:, k].argmax())
        group = times.groups[int(groups[:, core, k].argmax())]
        total = sum(terms[t][core, k] for t in group)
        for t in group:
            shares[t] += busy[core, k] * (terms[t][core, k] / total if total else 1 / len(group))
        shares["barrier"] += cost.barrier.value
        shares["links"] += max(float(ticks[k]) - cost.barrier.value - float(busy[core, k]), 0.0)
    whole = sum(shares.values())
    return {k: v / whole if whole else 0.0 for k, v in shares.items()}


def energy_shares(energy_pj: dict[str, float]) -> dict[str, float]:
    """Share of the dynamic energy in each component of :data:`snn_deploy.sims.hardware.cost.COMPONENTS`."""
    whole = sum(energy_pj.values())
    return {k: energy_pj.get(k, 0.0) / whole if whole else 0.0 for k in COMPONENTS}


def outside(shares: dict[str, float], fitted: dict[str, float]) -> float:
    """The part of a workload's mix that the fit's mix does not cover: total variation distance, 0 (same mix) to 1
    (only terms the fit did not exercise). Over the keys of ``shares``; ``fitted`` renormalised to those keys."""
    keys = list(shares)
    whole = sum(fitted.get(k, 0.0) for k in keys)
    if not whole:
        return 1.0 if sum(shares.values()) else 0.0
    return 0.5 * sum(abs(shares[k] - fitted.get(k, 0.0) / whole) for k in keys)


def factors(outside_share: float, error: float, prior_factor: float) -> tuple[float, float]:
    """(low, high) multipliers of a central figure: the fitted part within +- ``error``, the part outside the fit
    within the prior-to-calibration factor either way."""
    u = min(max(outside_share, 0.0), 1.0)
    return (1 - u) * max(1 - error, 0.0) + u / prior_factor, (1 - u) * (1 + error) + u * prior_factor


def prior_factors(profile: HardwareProfile) -> dict[str, float]:
    """How far the prior (uncalibrated) figures were off on the fit network, as a factor >= 1: ``time`` 4.573 for
    +357.3 %, ``energy`` 1.193 for +19.3 %."""
    cal = profile.calibration
    errors = {"time": cal.prior_error_pct["time_per_step"], "energy": cal.prior_error_pct["dynamic_energy"]}
    return {k: max(1 + e / 100, 1 / (1 + e / 100)) for k, e in errors.items()}


def _range(low: float, central: float, high: float) -> dict[str, float]:
    return {"low": float(low), "central": float(central), "high": float(high)}


def ranges(profile: HardwareProfile, mapping: Mapping, cost: HardwareCost, times: CoreTimes) -> dict[str, Any] | None:
    """Every time, energy and power figure of ``cost`` as low / central / high, with what the range rests on;
    None where the profile has no calibration with uncertainty data (an uncalibrated estimate)."""
    cal = profile.calibration
    unc = cal.uncertainty if cal else None
    if unc is None:
        return None
    prior = prior_factors(profile)
    t_shares = time_shares(mapping, cost, times)
    e_shares = energy_shares(cost.energy_pj)
    u_time, u_energy = outside(t_shares, unc.time_shares), outside(e_shares, unc.energy_shares)
    err_time, err_time_source = unc.fitted_error("time")
    err_energy, err_energy_source = unc.fitted_error("energy")
    t_lo, t_hi = factors(u_time, err_time, prior["time"])
    e_lo, e_hi = factors(u_energy, err_energy, prior["energy"])
    step, per_sample, latency = cost.time_per_step_ns, cost.time_per_sample_ns, cost.latency_ns
    dynamic = cost.dynamic_energy_pj
    out: dict[str, Any] = {
        "basis": {
            "label": unc.basis(), "fitted_on": unc.networks("fit"), "validated_on": unc.networks("validation"),
            "time_outside_share": u_time, "energy_outside_share": u_energy,
            "time_shares": t_shares, "energy_shares": e_shares,
            "fit_time_shares": dict(unc.time_shares), "fit_energy_shares": dict(unc.energy_shares),
            "fitted_error": {"time": err_time, "energy": err_energy},
            "fitted_error_source": {"time": err_time_source, "energy": err_energy_source},
            "prior_factor": prior, "core_checks": {k: list(v) for k, v in unc.core_checks.items()},
            "static_power_runs": [
                {"network": r.network, "role": r.role, "static_power_w": r.static_power_w} for r in unc.runs
                if r.static_power_w is not None]},
        "time_per_step_ns": _range(step * t_lo, step, step * t_hi),
        "latency_ns": _range(latency * t_lo, latency, latency * t_hi),
        "time_per_sample_ns": _range(per_sample * t_lo, per_sample, per_sample * t_hi),
        "samples_per_s": _range(*(1e9 / (per_sample * f) if per_sample else 0.0 for f in (t_hi, 1.0, t_lo))),
        "energy_pj_dynamic": _range(dynamic * e_lo, dynamic, dynamic * e_hi),
    }
    cores_lo, cores_hi = unc.cores(len(mapping.cores))
    per_chip = profile.cores_per_chip
    chips_lo = max(min(-(-cores_lo // per_chip), mapping.chips), 1)
    chips_hi = max(-(-cores_hi // per_chip), mapping.chips)
    out["cores"] = _range(cores_lo, len(mapping.cores), cores_hi)
    out["chips"] = _range(chips_lo, mapping.chips, chips_hi)
    static = unc.static_power_w()
    if profile.static_power_w is None or static is None:
        out["static_power_w"] = None
        out["energy_pj_static"] = None
        total = out["energy_pj_dynamic"]
    else:
        p_lo, p_hi = static
        p_mid = profile.static_power_w.value
        out["static_power_w"] = _range(p_lo * chips_lo, p_mid * mapping.chips, p_hi * chips_hi)
        # W x ns = 1e-9 J = 1e3 pJ
        out["energy_pj_static"] = _range(p_lo * chips_lo * per_sample * t_lo * 1e3, cost.static_energy_pj,
                                         p_hi * chips_hi * per_sample * t_hi * 1e3)
        total = {k: out["energy_pj_dynamic"][k] + out["energy_pj_static"][k] for k in ("low", "central", "high")}
    out["energy_pj_total"] = _range(total["low"], total["central"], total["high"])
    sample = out["time_per_sample_ns"]
    out["power_w"] = _range(total["low"] / sample["high"] * 1e-3, power_w(cost), total["high"] / sample["low"] * 1e-3)
    lat = out["latency_ns"]
    out["edp_pj_s"] = _range(total["low"] * lat["low"] * 1e-9, edp_pj_s(cost), total["high"] * lat["high"] * 1e-9)
    return out


def power_w(cost: HardwareCost) -> float:
    """Mean power while samples stream back to back: energy per inference over the time per sample."""
    per_sample = cost.time_per_sample_ns
    return cost.energy_total_pj / per_sample * 1e-3 if per_sample else 0.0


def edp_pj_s(cost: HardwareCost) -> float:
    """Energy-delay product: energy per inference (pJ) x the latency of one inference on its own (s)."""
    return cost.energy_total_pj * cost.latency_ns * 1e-9


def layer_factors(profile: HardwareProfile, terms_ns: dict[str, float], energy_pj: dict[str, float]
                  ) -> dict[str, tuple[float, float]] | None:
    """(low, high) multipliers of one layer's time (from its bottleneck core's terms) and dynamic energy (from its
    components), by the same rule as :func:`ranges`; None without uncertainty data."""
    cal = profile.calibration
    unc = cal.uncertainty if cal else None
    if unc is None:
        return None
    prior = prior_factors(profile)
    whole = sum(terms_ns.values())
    t_shares = {k: v / whole if whole else 0.0 for k, v in terms_ns.items()}
    return {"time": factors(outside(t_shares, unc.time_shares), unc.fitted_error("time")[0], prior["time"]),
            "energy": factors(outside(energy_shares(energy_pj), unc.energy_shares), unc.fitted_error("energy")[0],
                              prior["energy"])}
