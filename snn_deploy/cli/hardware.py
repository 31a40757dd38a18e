"""``snn-deploy simulate`` and ``report``: run a bundle on a data set and estimate what it costs on the chip.

Both run the test split through the simulator (or Lava) in batches, sharded across processes under ``torchrun``
(only rank 0 prints and writes), then map the graph onto the bundle's target and apply the cost model.
"""

from __future__ import annotations

from pathlib import Path

import click

from snn_deploy import workflows
from snn_deploy.cli.options import (AliasOption, claim_stdout, data_dir_option, emit_json, json_file, json_option,
                                    time_steps_option, to_stdout)
from snn_deploy.cli.params import POSITIVE
from snn_deploy.errors import CHECK_FAILED_EXIT_CODE, UserError
from snn_deploy.cli.handler import exit_on_user_error
from snn_deploy.sims.backends import registry
from snn_deploy.workflows import Inputs

PROFILE_CHOICES = ("loihi1", "loihi2")
MAX_TRACE_BYTES = 4 * 2**30
"""Memory of --traces (u and v as int64, spikes as one byte, per traced neuron, step and sample), checked before
the run."""
TRACE_BYTES_PER_VALUE = 8 + 8 + 1


def _common(command):
    options = [
        click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path)),
        click.option("--dataset", help="Data set whose test split to run (see `snn-deploy datasets`)."),
        click.option("--input", "array", type=click.Path(path_type=Path), help="Instead of --dataset: one sample "
                     "from a .npy array (values the input encodes; for an imported netx network the integers "
                     "themselves, e.g. the bias image), held over the steps or one map per step."),
        time_steps_option("Steps per inference (default: the bundle's T, or a per-step --input array's length).",
                          POSITIVE, dest="steps"),
        click.option("--layout", type=click.Choice(("chw", "whc")), default="chw", show_default=True,
                     help="--input layout: chw ([C,H,W] or [T,C,H,W]) or Lava's whc ([W,H,C] or [W,H,C,T])."),
        click.option("--samples", type=POSITIVE, help="Number of test samples (default: the whole split)."),
        click.option("--batch-size", type=POSITIVE, default=32, show_default=True, help="Samples per simulator batch."),
        data_dir_option(),
        click.option("--target", "--profile", "profile_name", cls=AliasOption, type=click.Choice(PROFILE_CHOICES),
                     help="Hardware to estimate for (default: the bundle's target)."),
        click.option("--neurobench", "neurobench_path", type=click.Path(path_type=Path),
                     help="Also write NeuroBench's metrics (footprint, sparsities, synaptic operations) as JSON in "
                          "NeuroBench's result layout."),
        click.option("--allow-violations", is_flag=True, help="Exit 0 even when the mapping breaks the profile's "
                     "per-core limits or a value overflows a register (default: exit 1 after writing every output)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@_common
@click.option("--backend", type=click.Choice(registry.names(graph_only=True)), default="sim", show_default=True,
              help=registry.help_text(graph_only=True))
@json_option("Also write the full report (report.json) as JSON")
@click.option("--traces", "trace_layers", metavar="LAYERS", help="LIF layers whose membrane state (u, v) to record "
              "at every step, comma-separated, or 'all'; written to --traces-out.")
@click.option("--traces-out", type=click.Path(path_type=Path), help="NumPy .npz file for --traces.")
@click.option("--trace-samples", type=POSITIVE, default=4, show_default=True,
              help="Test samples whose traces to record.")
@click.option("--force", is_flag=True, help="Replace an existing --json or --traces-out file.")
@exit_on_user_error
def simulate(bundle_path: Path, dataset: str | None, array: Path | None, steps: int | None, layout: str,
             samples: int | None, batch_size: int, data_dir: Path | None, profile_name: str | None,
             neurobench_path: Path | None, allow_violations: bool, backend: str, json_path: Path | None,
             trace_layers: str | None, traces_out: Path | None, trace_samples: int, force: bool) -> None:
    """Run BUNDLE on a data set or a .npy array: accuracy (where the network classifies and the data has labels),
    SOPs, and estimated time per step (bottleneck layer and core), latency, energy (dynamic and static) and
    throughput on the chip.

    Exits 1 when the mapping breaks the profile's limits (a failed check; --allow-violations exits 0).
    """
    from snn_deploy import console
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.graph.nodes import attention_pairs
    from snn_deploy.io import check_outputs, write_json_atomic
    from snn_deploy.sims.hardware.report import console_table, energy_text, neurobench_json, summary_lines, time_text

    claim_stdout(json_path)
    if (trace_layers is None) != (traces_out is None):
        raise UserError("--traces and --traces-out go together: name the layers and the .npz file to write")
    check_outputs(None if to_stdout(json_path) else json_path, traces_out, neurobench_path,
                  inputs=[bundle_path, array], force=force)
    bundle = load_bundle(bundle_path)
    traced = _trace_names(bundle.graph, trace_layers) if trace_layers is not None else []  # refused before the run
    traced_samples = 1 if array is not None else trace_samples
    trace_bytes = traced_samples * (steps or bundle.graph.T) * TRACE_BYTES_PER_VALUE * sum(
        bundle.graph[name].neurons for name in traced)
    if trace_bytes > MAX_TRACE_BYTES:
        raise UserError(f"--traces of {len(traced)} layer(s) over {traced_samples} samples would take "
                        f"{trace_bytes:,} bytes, more than {MAX_TRACE_BYTES:,}; trace fewer layers or pass a smaller "
                        "--trace-samples")
    source = Inputs(dataset, array, steps=steps, layout=layout)
    analysis, rank = workflows.simulate(bundle, source, backend=backend, samples=samples, batch_size=batch_size,
                                        data_dir=data_dir, profile=profile_name)
    if rank != 0:
        return
    report = workflows.report_data(analysis, bundle, source)
    echo = click.echo
    echo(f"{bundle_path}: {report['run']['samples']} {source.label} sample(s), backend {backend}, "
         f"{report['run']['processes']} process(es)")
    for label, value in summary_lines(report):
        echo(f"  {label:<38}{value}")
    if array is not None:
        _echo_prediction(analysis.activity)
    for model in ("neurons", "embedded"):
        if not report["bundle"]["spike_products"]:
            break  # no spike products: one model, already summarised
        hw = report["hardware"][model]
        label = ("embedded cores" if model == "embedded" else "mixed lowerings"
                 if attention_pairs(hw["spike_products"]) else hw["spike_products"])  # counted in the summary
        bound = f" (lower bound {hw['lower_bound_cores']})" if "lower_bound_cores" in hw else ""
        echo(f"  {'spike products as ' + label:<38}{hw['cores']} cores{bound} on {hw['chips']} chip(s), "
             f"{energy_text(hw['energy_pj_total'])} and {time_text(hw['latency_ns'])} per inference "
             f"({hw['provenance']})")
    echo(f"  {'simulator throughput':<38}{report['run']['samples_per_s']:.3g} samples/s, "
         f"{report['run']['steps_per_s']:.3g} steps/s (wall clock on this machine)")
    if console.verbosity() > 0:
        screen = console.table_console()
        screen.print(console_table(report, screen.width))
    emit_json(json_path, report)
    if neurobench_path is not None:
        write_json_atomic(neurobench_path, neurobench_json(report))
    if traces_out is not None:
        _write_traces(bundle.graph, traced, source, trace_samples, data_dir, traces_out)
        shown = 1 if array is not None else trace_samples
        echo(f"  {'membrane traces':<38}{traces_out} ({shown} sample(s); simulator, functional time base)")
    fail_on_violations(analysis, allow_violations)


OUTPUT_COUNTS_SHOWN = 64
"""Output spike counts are printed for readouts of at most this many neurons (one per class, typically)."""


def _echo_prediction(activity) -> None:
    """The --input sample's predicted class and its logits, and the output layer's spike counts over the run."""
    import numpy as np

    if activity.first_logits is None:
        return
    logits = activity.first_logits
    top = int(np.argmax(logits))
    click.echo(f"  {'predicted class':<38}{top} (logit {logits[top]:.4g} of {len(logits)} classes; logits "
               f"{np.array2string(logits, precision=3, max_line_width=10**6)})")
    counts = activity.first_counts
    if counts is not None and counts.size <= OUTPUT_COUNTS_SHOWN:
        click.echo(f"  {'output spike counts':<38}{' '.join(str(int(c)) for c in counts)} (per output neuron, "
                   f"over {activity.T} steps)")


def fail_on_violations(analysis, allow: bool) -> None:
    """Exit with :data:`CHECK_FAILED_EXIT_CODE` when the mapping breaks the profile's limits (after every output
    is written), unless ``allow``."""
    from snn_deploy.graph import summarize
    from snn_deploy.sims.hardware.report import register_violations

    violations = analysis.mappings["neurons"].violations
    registers = register_violations(analysis.activity, analysis.profile)
    if not violations and not registers:
        return
    tail = "" if allow else " (exit 1; --allow-violations exits 0)"
    if violations:
        click.echo(f"check failed: {len(violations)} violation(s) of {analysis.profile.name}'s per-core limits: "
                   f"{summarize(violations)}" + tail, err=True)
    if registers:
        click.echo(f"check failed: {len(registers)} register overflow(s) of {analysis.profile.name}: " + "; ".join(
            f"{r['layer']} {r['register']}: {r['count']:,} value(s) beyond the {r['behaviour']}, worst {r['worst']:,}"
            for r in registers) + tail, err=True)
    if not allow:
        raise click.exceptions.Exit(CHECK_FAILED_EXIT_CODE)


def _trace_names(graph, spec: str) -> list[str]:
    """LIF node names from ``--traces`` (comma-separated, or 'all'), in graph order."""
    from snn_deploy.graph import LIFNode

    lifs = [n.name for n in graph.of_kind(LIFNode)]
    if spec.strip() == "all":
        return lifs
    asked = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in asked if name not in lifs]
    if unknown or not asked:
        raise UserError(f"--traces: {', '.join(unknown) or 'no layer'} is not a LIF layer of this bundle; choose "
                        f"from {', '.join(lifs[:6])}{', ...' if len(lifs) > 6 else ''} or 'all'")
    return [name for name in lifs if name in asked]


def _write_traces(graph, names: list[str], source: Inputs, count: int, data_dir: Path | None, out: Path) -> None:
    """Simulate the first ``count`` test samples (or the --input array) recording u, v and spikes of ``names``;
    write one .npz (``<layer>.u``, ``<layer>.v``, ``<layer>.spikes``: [T, B, C, H, W]; ``labels`` where the data
    has them), atomically."""
    import io

    import numpy as np

    from snn_deploy.io import write_bytes_atomic
    from snn_deploy.sims.backends.simulator import simulate as run_graph

    graph, x, y = workflows.run_inputs(graph, source, samples=count, data_dir=data_dir)
    result = run_graph(graph, x, record=set(names), traces=set(names))
    arrays = {"labels": y.numpy()} if y is not None else {}
    for name in names:
        trace = result.traces[name]
        arrays.update({f"{name}.u": trace.u.numpy(), f"{name}.v": trace.v.numpy(),
                       f"{name}.spikes": result.spikes[name].numpy()})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(out, buffer.getvalue())


@click.command()
@_common
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Report directory.")
@json_option("Also write the full report (report.json) as JSON")
@click.option("--force", is_flag=True, help="Replace an existing report directory (and --json / --neurobench "
              "file).")
@click.option("--lowerings/--no-lowerings", default=True, show_default=True,
              help="Price every lowering of the spike products (export --attention) at the run's activity: the "
                   "report's trade-off section. Maps the network once more per lowering (about as long as the "
                   "report's own mapping each; tens of seconds for ImageNet-size networks).")
@exit_on_user_error
def report(bundle_path: Path, dataset: str | None, array: Path | None, steps: int | None, layout: str,
           samples: int | None, batch_size: int, data_dir: Path | None, profile_name: str | None,
           neurobench_path: Path | None, allow_violations: bool, output: Path, json_path: Path | None,
           force: bool, lowerings: bool) -> None:
    """Write a per-layer hardware report of BUNDLE on a data set (or a .npy array) into OUTPUT: report.json
    (+ schema), neurobench.json, layers.csv, cores.csv, report.html and the plots as PNG files.

    Exits 1 when the mapping breaks the profile's limits (a failed check; --allow-violations exits 0).
    """
    from snn_deploy.console import table_console
    from snn_deploy.exporters.formats.bundle import load_bundle
    from snn_deploy.io import check_outputs, write_json_atomic
    from snn_deploy.sims.hardware.report import (console_table, lowerings_lines, neurobench_json, report_files,
                                                 write_dir)

    # fail before the run, not after it
    claim_stdout(json_path)
    check_outputs(output, inputs=[bundle_path, array], force=force, directory=True)
    check_outputs(neurobench_path, json_file(json_path), inputs=[bundle_path, array], force=force, others=[output])
    bundle = load_bundle(bundle_path)
    source = Inputs(dataset, array, steps=steps, layout=layout)
    analysis, rank = workflows.simulate(bundle, source, samples=samples, batch_size=batch_size, data_dir=data_dir,
                                        profile=profile_name, lowerings=lowerings)
    if rank != 0:
        return
    data = workflows.report_data(analysis, bundle, source)
    screen = table_console()
    screen.print(console_table(data, screen.width))
    click.echo(f"state reset: {bundle.graph.reset_text()} (recorded in the bundle)")
    for line in lowerings_lines(data, lowerings):
        click.echo(line)
    write_dir(output, report_files(data, analysis.activity), force=force)
    if neurobench_path is not None:
        write_json_atomic(neurobench_path, neurobench_json(data))
    emit_json(json_path, data)
    click.echo(f"wrote {output}/ (report.html, report.json, neurobench.json, layers.csv, cores.csv, plots)")
    fail_on_violations(analysis, allow_violations)
