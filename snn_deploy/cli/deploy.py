"""``snn-deploy quantize``, ``export`` and ``verify``: from a trained model to a checked deployment."""

from __future__ import annotations

from pathlib import Path

import click

from snn_deploy.cli.options import (AliasOption, claim_stdout, data_dir_option, emit_json, json_file, json_option,
                                    time_steps_option, to_stdout)
from snn_deploy.cli.params import NON_NEGATIVE, POSITIVE
from snn_deploy.errors import UserError
from snn_deploy.cli.handler import exit_on_user_error
from snn_deploy.sims.backends import registry
from snn_deploy import workflows
from snn_deploy.workflows import EXPORT_TARGETS, calibration_inputs, model_backends

TARGETS = tuple(EXPORT_TARGETS)
EXPORT_SCHEMA = 1


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--calibrate", "dataset", metavar="DATASET", help="Data set whose training inputs set the input "
              "scale (needed for float-neuron models).")
@click.option("--eval", "eval_dataset", metavar="DATASET", help="Data set whose test split measures accuracy and "
              "per-layer spike agreement before and after (default: the --calibrate data set).")
@click.option("--eval-samples", type=NON_NEGATIVE, default=256, show_default=True,
              help="Test samples for the comparison (0: skip).")
@data_dir_option()
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Quantized model file.")
@json_option("Also write the report as JSON")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@exit_on_user_error
def quantize(model_path: Path, dataset: str | None, eval_dataset: str | None, eval_samples: int,
             data_dir: Path | None, output: Path, json_path: Path | None, force: bool) -> None:
    """Fold BatchNorm and quantize MODEL to Loihi fixed point (integer neuron mode).

    Reports per layer what was clipped and, on test data, how many spikes still agree with MODEL, and the
    accuracy before and after.
    """
    import copy

    from snn_deploy.console import progress
    from snn_deploy.exporters.frontends.model_file import prepare
    from snn_deploy.io import check_outputs
    from snn_deploy.modelfile import load_model, save_model
    from snn_deploy.quant_check import compare_quantized

    claim_stdout(json_path)
    check_outputs(output, None if to_stdout(json_path) else json_path, inputs=[model_path], force=force)
    model_file = load_model(model_path)
    if model_file.neuron_mode == "integer":
        raise UserError(f"{model_path} already holds a quantized (integer) model; quantize its float or loihi "
                        "source instead")
    eval_dataset = eval_dataset or dataset
    test = None
    if eval_dataset and eval_samples:
        from snn_deploy.data.tensors import dataset_tensors
        test = dataset_tensors(model_file.model.config, eval_dataset, "test", eval_samples, data_dir)
    original = copy.deepcopy(model_file.model).eval() if test is not None else None
    prepared = prepare(model_file, calibration=calibration_inputs(model_file, dataset, data_dir), rewrites=[])
    check = None
    if test is not None:
        x, y = test
        with progress("comparing", int(y.numel())) as advance:
            check = compare_quantized(original, prepared.model, x, y, time_axis=x.dim() == 5, advance=advance)
    report = {"schema_version": 1, "model": str(model_path), "output": str(output), "calibration": dataset,
              "evaluation": eval_dataset if check else None, "quantization": prepared.quantization,
              "check": check.to_dict() if check else None}
    save_model(prepared.model, output, source=str(model_path), created_from="snn-deploy quantize",
               quantization=prepared.quantization,
               provenance={"calibration": dataset, "check": report["check"]})
    emit_json(json_path, report)
    _render_quantization(prepared.quantization, check)
    click.echo(f"wrote {output}")


def _render_quantization(quantization: dict, check) -> None:
    """Per layer: clipping, then (with a check) spike rates before/after and agreement; accuracy last."""
    from snn_deploy.console import table, table_console

    units = quantization.get("units", [])
    by_neuron = {u["neuron"]: u for u in units}
    columns = {"layer": "name", "vth": "number", "w exp": "number", "w clipped": "number", "b clipped": "number",
               **({"rate": "number", "rate q": "number", "agree": "number"} if check is not None else {})}
    out = table("post-training quantization", columns=columns,
                caption="vth: threshold; w exp: weight exponent; w/b clipped: weights (of all) and biases clipped"
                        + ("; rate, rate q: spikes per neuron and step before and after; agree: spike agreement"
                           if check is not None else ""))
    if check is not None:
        for row in check.layers:
            out.add_row(row.layer, *_unit_cells(by_neuron.get(row.layer), row.layer, quantization),
                        f"{row.spikes_before / row.outputs:.4f}", f"{row.spikes_after / row.outputs:.4f}",
                        f"{100 * row.agreement:.2f}%")
    else:
        for unit in units:
            out.add_row(unit["layer"], *_unit_cells(unit, unit["layer"], quantization))
    console = table_console()
    console.print(out)
    clipped = sum(u["weights_clipped"] for u in units)
    console.print(f"{len(units)} layers quantized, {clipped} weights clipped")
    if check is not None:
        console.print(f"accuracy on {check.samples} test samples: {100 * check.accuracy_before:.2f} % before, "
                      f"{100 * check.accuracy_after:.2f} % after ({check.prediction_mismatches} predictions changed)")


def _unit_cells(unit: dict | None, layer: str, quantization: dict) -> list[str]:
    if unit is not None:
        total = unit["weights_total"]
        return [str(unit["vth"]), str(unit["weight_exp"]), f"{unit['weights_clipped']}/{total}",
                str(unit["bias_clipped"])]
    attention = next((a for a in quantization.get("attention", []) if a["neuron"] == layer), None)
    return [str(attention["vth"]) if attention else "", "", "", ""]


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(TARGETS), default="loihi", show_default=True,
              help="loihi (= loihi2) / loihi1: bundle directory; nir, onnx, netx: a single file.")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output path (default: MODEL's name with "
              "the target's suffix).")
@click.option("--calibrate", "dataset", metavar="DATASET", help="Data set for the input scale of a float model.")
@data_dir_option()
@click.option("--rewrite", "rewrites", multiple=True, metavar="NAME",
              help="Apply a documented rewrite (maxpool-after-lif); repeatable.")
@click.option("--eval", "--rewrite-eval", "rewrite_eval", cls=AliasOption, metavar="DATASET",
              help="Measure the accuracy change of the rewrites on this data set's test split (reported and stored in "
              "the bundle manifest).")
@click.option("--eval-samples", type=POSITIVE, default=256, show_default=True, help="Test samples for --eval.")
@click.option("--input-on-host", is_flag=True, help="Compute the analog input layer (the convs reading the input "
              "and the LIFs they feed) on the host; the chip receives its binary spikes (loihi1 needs this).")
@click.option("--attention", metavar="NAME", help="How the chip computes spike products "
              "(default coincidence): coincidence LIF arrays, graded-spike product arrays (one-variable neurons, "
              "denser), token-serial (tokens streamed through shared arrays over sub-step ticks), or packed (several "
              "products per 24-bit graded payload); auto: per "
              "product the one that minimises --optimize (priced by the mapper and cost model at a stated 0.1 firing "
              "rate); recorded in the bundle. See docs/attention_lowerings.md.")
@click.option("--optimize", type=click.Choice(("cores", "latency", "energy")), help="What --attention auto "
              "minimises (default cores): the mapper's cores, one inference's latency, or energy per inference.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
@click.option("--dt", type=float, help="NIR input: the step (s) to read its time constants with (default: the "
              "file's dt, else 1e-4, snnTorch's; Norse files: the square of Norse's dt). See docs/nir_mapping.md.")
@time_steps_option("NIR input: time steps to run the imported network (default: the file's, else 16).", POSITIVE,
                   dest="steps")
@click.option("--reset-interval", type=NON_NEGATIVE, help="netx input: zero every neuron's state every N steps, "
              "0 for never (default: what lava-dl's loader does with the file: no reset, except a file written by "
              "export --target netx, which records one per sample).")
@click.option("--reset", type=click.Choice(["zero", "subtract"]), help="NIR input: what the network does to v after "
              "a spike (the file does not say): zero (default, Loihi's) or subtract (refused: Loihi cannot).")
@json_option("Also write what was exported (output, nodes, T, latency) as JSON")
@exit_on_user_error
def export(model_path: Path, target: str, output: Path | None, dataset: str | None, data_dir: Path | None,
           rewrites: tuple[str, ...], rewrite_eval: str | None, eval_samples: int, input_on_host: bool,
           attention: str | None, optimize: str | None, force: bool, dt: float | None, steps: int | None,
           reset_interval: int | None, reset: str | None, json_path: Path | None) -> None:
    """Export MODEL (a snn-deploy model file, a lava-dl netx network, or a NIR graph from snnTorch, Norse,
    SpikingJelly, Sinabs, ...) for Loihi (a bundle), or as NIR, ONNX or lava-dl netx."""
    from snn_deploy.graph import LIFNode
    from snn_deploy.io import check_outputs

    chosen = EXPORT_TARGETS[target]
    output = output or model_path.with_suffix(chosen.suffix)
    claim_stdout(json_path)
    check_outputs(output, inputs=[model_path], force=force, directory=chosen.bundle)
    check_outputs(json_file(json_path), inputs=[model_path], force=force, others=[output])
    graph = _export(model_path, target, output, dataset, data_dir, rewrites, rewrite_eval, eval_samples,
                    input_on_host, force, dt, steps, reset_interval, reset, attention, optimize)
    emit_json(json_path, {"schema_version": EXPORT_SCHEMA, "command": "export", "model": str(model_path),
                          "target": target, "output": str(output), "nodes": len(graph.nodes), "T": graph.T,
                          "neurons": int(sum(n.neurons for n in graph.of_kind(LIFNode))),
                          "pipeline_latency_steps": max(graph.depths().values()),
                          "reset_interval": graph.reset_interval, "attention": graph.attention})


def _export(model_path: Path, target: str, output: Path, dataset: str | None, data_dir: Path | None,
            rewrites: tuple[str, ...], rewrite_eval: str | None, eval_samples: int, input_on_host: bool,
            force: bool, dt: float | None, steps: int | None, reset_interval: int | None, reset: str | None,
            attention: str | None = None, optimize: str | None = None):
    """What ``export`` does once its outputs are checked (:func:`snn_deploy.workflows.export`), printed; returns
    the exported graph."""
    done = workflows.export(model_path, target, output, calibrate=dataset, data_dir=data_dir, rewrites=rewrites,
                            rewrite_eval=rewrite_eval, eval_samples=eval_samples, input_on_host=input_on_host,
                            force=force, dt=dt, steps=steps, reset=reset, reset_interval=reset_interval,
                            attention=attention, optimize=optimize)
    graph, latency = done.graph, max(done.graph.depths().values())
    if not done.target.bundle:
        _echo_rewrites(done.rewrites)
        click.echo(f"wrote {done.path}" + (f" (state reset: {graph.reset_text()})" if done.source == "netx" else ""))
    elif done.source == "model":
        click.echo(f"wrote {done.path}/ ({len(graph.nodes)} nodes, pipeline latency {latency} steps)")
        if done.host_layers:
            click.echo(f"computed on the host: {', '.join(done.host_layers)}")
        _echo_rewrites(done.rewrites)
    elif done.source == "nir":
        click.echo(f"wrote {done.path}/ ({len(graph.nodes)} nodes, {graph.T} steps, pipeline latency {latency} steps)")
        if done.silent:
            click.echo(f"never spikes on the {done.calibration_samples} calibration samples: {', '.join(done.silent)}")
    else:
        click.echo(f"wrote {done.path}/ ({len(graph.nodes)} nodes from lava-dl netx {model_path.name}, pipeline "
                   f"latency {latency} steps, T = {graph.T}, state reset: {graph.reset_text()})")
    return graph


def _echo_rewrites(rewrites: dict) -> None:
    for name, record in rewrites.items():
        line = f"rewrite {name}: moved {len(record['moved'])} pool(s)"
        if record.get("accuracy_before") is not None:
            line += (f"; accuracy {100 * record['accuracy_before']:.2f} % -> {100 * record['accuracy_after']:.2f} % "
                     "(before fine-tuning)")
        click.echo(line)


@click.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option("--backend", "--backends", "backends", cls=AliasOption, metavar="NAME[,NAME...]",
              help=f"Comma-separated, first is the reference: {', '.join(model_backends())} (default: "
              f"all); for a netx file {', '.join([*registry.names(graph_only=True), registry.NETX])} (default: "
              f"sim,{registry.NETX}).")
@click.option("--dataset", help="Data set whose test samples to run.")
@click.option("--input", "array", type=click.Path(path_type=Path), help="Instead of --dataset (netx networks): one "
              "sample from a .npy array, as `simulate --input` takes it.")
@time_steps_option("Steps per inference of a bundle or netx network (default: its T, or a per-step --input "
                   "array's length).", POSITIVE, dest="steps")
@click.option("--layout", type=click.Choice(("chw", "whc")), default="chw", show_default=True,
              help="--input layout (whc: Lava's).")
@click.option("--samples", type=POSITIVE, default=32, show_default=True, help="Number of test samples.")
@click.option("--per-layer", is_flag=True, help="Lava runs one layer at a time, driven by the simulator's "
              "recorded spikes (bounded memory; needs sim before lava in --backend).")
@click.option("--calibrate", "calibrate", metavar="DATASET", help="Calibration data for a float model.")
@click.option("--attention", metavar="NAME", help="A model file: the spike products' "
              "lowering Lava builds, as export --attention (default coincidence); a bundle uses the one it records.")
@data_dir_option()
@json_option("Also write the report as JSON")
@click.option("--force", is_flag=True, help="Replace an existing --json file.")
@click.option("--reset-interval", type=NON_NEGATIVE, help="netx input: zero every neuron's state every N steps, "
              "0 for never (default: what lava-dl's loader does with the file: no reset, except a file written by "
              "export --target netx, which records one per sample).")
@exit_on_user_error
def verify(model_path: Path, backends: str | None, dataset: str | None, array: Path | None, steps: int | None,
           layout: str, samples: int, per_layer: bool, calibrate: str | None, attention: str | None,
           data_dir: Path | None, json_path: Path | None, force: bool, reset_interval: int | None) -> None:
    """Run the same inputs through every backend and compare the spikes of every layer.

    MODEL is a snn-deploy model file, a lava-dl netx network (backends sim, lava, onnx, netx: lava-dl's own
    loader in Lava) or a bundle directory (sim, lava, onnx). Exits 1 (and names the first diverging layer and step)
    on any mismatch.
    """
    from snn_deploy.io import check_outputs
    from snn_deploy.sims.runs.verify import render, report_json
    from snn_deploy.workflows import Inputs, verify as run_verify

    claim_stdout(json_path)
    check_outputs(None if to_stdout(json_path) else json_path, inputs=[model_path, array], force=force)
    report = run_verify(model_path, Inputs(dataset, array, steps=steps, layout=layout), backends=backends,
                        samples=samples, calibrate=calibrate, data_dir=data_dir, reset_interval=reset_interval,
                        per_layer=per_layer, attention=attention)
    render(report)
    emit_json(json_path, report_json(report))
    raise SystemExit(0 if report.exact else 1)
