"""``snn-deploy simulate`` and ``report``: run a bundle on a data set and estimate what it costs on the chip.

Both run the test split through the simulator (or Lava) in batches, sharded across processes under ``torchrun``
(only rank 0 prints and writes), then map the graph onto the bundle's target and apply the cost model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from snn_deploy.errors import UserError, exit_on_user_error

PROFILE_CHOICES = ("loihi1", "loihi2")
ALL_SAMPLES = sys.maxsize
TABLE_WIDTH = 160
"""Console width of the layer table when stdout is not a terminal (rich would assume 80 and cut layer names)."""


def _run(bundle_path: Path, dataset: str, backend: str, samples: int | None, batch_size: int,
         data_dir: Path | None, profile_name: str | None):
    """Load, run and analyse; returns (bundle, analysis, rank)."""
    from snn_deploy.exporters.bundle import load_bundle
    from snn_deploy.sims.driver import backend_runner, bundle_tensors, init_shard, run_dataset
    from snn_deploy.sims.profiles import profile
    from snn_deploy.sims.report import analyse

    if samples is not None and samples < 1:
        raise UserError(f"--samples must be positive, got {samples}")
    backend_runner(backend)  # a missing Lava fails before any data is read
    bundle = load_bundle(bundle_path)
    hw = profile(profile_name or bundle.manifest.get("target", "loihi2"))
    x, y = bundle_tensors(bundle.graph, dataset, "test", samples or ALL_SAMPLES, data_dir)
    shard = init_shard()
    activity = run_dataset(bundle.graph, x, y, backend=backend, batch_size=batch_size, shard=shard)
    return bundle, analyse(bundle.graph, hw, activity), shard.rank


def _common(command):
    options = [
        click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path)),
        click.option("--dataset", required=True, help="Data set whose test split to run (see `snn-deploy datasets`)."),
        click.option("--samples", type=int, help="Number of test samples (default: the whole split)."),
        click.option("--batch-size", default=32, show_default=True, help="Samples per simulator batch."),
        click.option("--data-dir", type=click.Path(path_type=Path), help="Root of on-disk data sets."),
        click.option("--profile", "profile_name", type=click.Choice(PROFILE_CHOICES),
                     help="Hardware profile (default: the bundle's target)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@_common
@click.option("--backend", type=click.Choice(("sim", "lava")), default="sim", show_default=True,
              help="sim: the vectorised integer simulator; lava: Lava's bit-accurate CPU models (slow).")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the full report as JSON.")
@exit_on_user_error
def simulate(bundle_path: Path, dataset: str, samples: int | None, batch_size: int, data_dir: Path | None,
             profile_name: str | None, backend: str, json_path: Path | None) -> None:
    """Run BUNDLE on a data set: accuracy, SOPs, and estimated latency, energy and throughput on the chip."""
    from snn_deploy.exporters.bundle import summarize
    from snn_deploy.io import write_json_atomic
    from snn_deploy.sims.report import build, energy_text, time_text

    bundle, analysis, rank = _run(bundle_path, dataset, backend, samples, batch_size, data_dir, profile_name)
    if rank != 0:
        return
    report = build(analysis, bundle, dataset=dataset, split="test")
    run, paper = report["run"], report["paper_45nm"]
    echo = click.echo
    echo(f"{bundle_path}: {run['samples']} {dataset} test samples, backend {backend}, {run['processes']} process(es)")
    echo(f"  accuracy                {100 * run['accuracy']:.2f} %  (simulated)")
    echo(f"  synaptic ops            {report['hardware']['neurons']['synaptic_ops']:,.0f} per inference "
         "(simulated; every summand of a residual sum counted as the chip receives it)")
    echo(f"  SOPs, 45 nm convention  {paper['sops']:,.0f} per inference; energy {energy_text(paper['energy_pj'])} "
         "(paper convention: 0.9 pJ/AC, 4.6 pJ/MAC)")
    for model, label in (("neurons", "coincidence neurons"), ("embedded", "embedded cores")):
        hw = report["hardware"][model]
        echo(f"  {analysis.profile.name}, products as {label + ':':21s}{hw['cores']} cores on {hw['chips']} chip(s), "
             f"{energy_text(hw['energy_pj_total'])} and {time_text(hw['latency_ns'])} per inference, "
             f"{hw['samples_per_s']:,.0f} samples/s streamed (estimated)")
    echo(f"  simulator throughput    {run['samples_per_s']:.3g} samples/s, {run['steps_per_s']:.3g} steps/s "
         "(wall clock on this machine)")
    violations = analysis.mappings["neurons"].violations
    if violations:
        echo(f"  violations ({len(violations)}): {summarize(violations)}")
    if json_path is not None:
        write_json_atomic(json_path, report)


@click.command()
@_common
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Report directory.")
@click.option("--force", is_flag=True, help="Replace an existing report directory.")
@exit_on_user_error
def report(bundle_path: Path, dataset: str, samples: int | None, batch_size: int, data_dir: Path | None,
           profile_name: str | None, output: Path, force: bool) -> None:
    """Write a per-layer hardware report of BUNDLE on a data set: report.json (+ schema), layers.csv, report.html
    and the plots as PNG files in OUTPUT."""
    from rich.console import Console

    from snn_deploy.sims.report import build, console_table, report_files, write_dir

    if output.exists() and not force:  # fail before the run, not after it
        raise UserError(f"{output} already exists; choose another output directory or pass --force to replace it")
    bundle, analysis, rank = _run(bundle_path, dataset, "sim", samples, batch_size, data_dir, profile_name)
    if rank != 0:
        return
    data = build(analysis, bundle, dataset=dataset, split="test")
    Console(width=None if sys.stdout.isatty() else TABLE_WIDTH).print(console_table(data))
    write_dir(output, report_files(data, analysis.activity), force=force)
    click.echo(f"wrote {output}/ (report.json, layers.csv, report.html, plots)")
