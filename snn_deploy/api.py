"""snn-deploy from Python: what the command line does, for notebooks and scripts (see docs/api.md).

    import snn_deploy as sd

    splits = sd.open_splits("digits")                    # torch Datasets (8x8 digits)
    trained = sd.train("spikformer-tiny-8x8", "digits", "model.pt", epochs=3)
    bundle = sd.export(trained.path, "model.loihi")      # Loihi 2 bundle
    results = sd.simulate(bundle, "digits", samples=64)  # accuracy, per-layer SOPs, spikes, cores, energy, time
    sd.verify(trained.path, "digits", backends="torch,sim,onnx")  # spike for spike, layer by layer
    sd.report(results, "report")                          # report.html, report.json, CSVs, plots

Why a facade: each call is the command of the same name, through the same library code (so a notebook and the
CLI give the same numbers), with Python defaults instead of required options, and results as plain data:
``Results.layers`` and ``Results.cores`` are lists of flat dicts (``pandas.DataFrame(results.layers)`` works);
``Results.report`` is ``report.json``'s content. Where a command has a flow of its own (verify, eval, simulate's
inputs and steps), this module and the command both call :mod:`snn_deploy.workflows`. Errors are
:class:`snn_deploy.errors.UserError` with the message the CLI prints. Results print as one short line.
Importing this module is cheap; torch loads on the first call that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snn_deploy.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from snn_deploy.exporters.formats.bundle import Bundle
    from snn_deploy.modelfile import ModelFile
    from snn_deploy.models import SpikingNetwork
    from snn_deploy.sims.hardware.report import Analysis

DEFAULT_EVENT_STEPS = 16
"""Frames per sample of event data when neither T nor a model is given (the zoo's DVS configurations)."""
DEFAULT_IMAGE_SIZE = {True: 8, False: 224}
"""Input size of data sets without a native size: built-in digits are 8x8 scans; ImageFolder trees ImageNet's."""


def model_names() -> list[str]:
    """Names of the model zoo (``snn-deploy models``)."""
    from snn_deploy.models import names

    return list(names())


def dataset_names() -> list[str]:
    """Names of the data sets (``snn-deploy datasets``)."""
    from snn_deploy.data import names

    return list(names())


def create(name: str, *, neuron: str = "loihi", **overrides: Any) -> SpikingNetwork:
    """A zoo model (``snn-deploy models`` lists the names) with ``neuron`` mode ``loihi`` (integer,
    quantization-aware) or ``float``; ``overrides`` change its config (e.g. ``num_classes=10``, ``T=4``)."""
    from snn_deploy.models import create as create_model

    return create_model(name, mode=neuron, **overrides)


# --- data -----------------------------------------------------------------------------------------------------

def _dataset_class():
    import torch.utils.data

    class SampleDataset(torch.utils.data.Dataset):
        """One split as a torch Dataset: ``ds[i]`` is ``(input, label)``; inputs as the model reads them (images
        [C, H, W], event frames [T, C, H, W]), without augmentation unless ``augment=True``."""

        def __init__(self, samples, *, augment: bool = False, seed: int = 0) -> None:
            self.samples, self.classes = samples, samples.classes
            self.augment, self.seed = augment, seed

        def __len__(self) -> int:
            return len(self.samples)

        def __getitem__(self, i: int):
            import numpy as np

            if not 0 <= i < len(self):
                raise IndexError(f"sample {i} out of range 0..{len(self) - 1}")
            rng = np.random.default_rng((self.seed, i)) if self.augment else None
            return self.samples.sample(i, rng), int(self.samples.labels[i])

    return SampleDataset


@dataclass(frozen=True)
class DataSplits:
    """A data set's train and test splits as ``torch.utils.data.Dataset``s, and what they were opened with."""

    train: Any
    test: Any
    classes: tuple[str, ...]
    size: int
    T: int | None
    """Frames per sample for event data; None for images (the model repeats an image every step)."""


def open_splits(dataset: str, *, model: str | None = None, size: int | None = None, T: int | None = None,
                data_dir: str | Path | None = None, augment: bool = False) -> DataSplits:
    """Train and test splits of ``dataset`` as torch Datasets.

    Defaults: the input size and T of ``model`` (a zoo name) when given; otherwise the data set's native size
    (8 for the built-in digits, 224 for ImageFolder trees) and, for event data, 16 frames per sample.
    ``data_dir`` defaults to ``$SNN_DEPLOY_DATA``, else ``./data`` (built-in data sets need none).
    """
    from snn_deploy.data import info
    from snn_deploy.data import open_splits as open_samples

    entry = info(dataset)
    if model is not None:
        from snn_deploy.models import spec

        s = spec(model)
        size, T = size or s.input_shape[1], T or s.default_T
    size = size or entry.native_size or DEFAULT_IMAGE_SIZE[entry.builtin]
    T = (T or DEFAULT_EVENT_STEPS) if entry.kind == "events" else None
    splits = open_samples(dataset, size=size, T=T or 1, data_dir=data_dir)
    SampleDataset = _dataset_class()
    return DataSplits(SampleDataset(splits.train, augment=augment), SampleDataset(splits.test),
                      tuple(splits.train.classes), size, T)


# --- train, quantize, export ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trained:
    """A finished training run: the model file, its metrics file and the metrics."""

    path: Path
    metrics_path: Path
    metrics: dict[str, Any]

    def __repr__(self) -> str:
        return (f"Trained({str(self.path)!r}, test accuracy {_percent(self.metrics.get('test_accuracy'))}, deployed "
                f"{_percent(self.metrics.get('deployed_test_accuracy'))})")

    @property
    def model(self) -> SpikingNetwork:
        from snn_deploy.modelfile import load_model

        return load_model(self.path).model


def _check_output(path: Path, force: bool, *, inputs: tuple[Path, ...] = (), directory: bool = False) -> None:
    """The command line's output rule (:func:`snn_deploy.io.check_outputs`), spelled for Python callers."""
    from snn_deploy.io import check_outputs

    check_outputs(path, inputs=inputs, force=force, directory=directory, force_name="force=True")


def train(model: str, dataset: str, output: str | Path, *, epochs: int | None = None, batch_size: int | None = None,
          lr: float | None = None, weight_decay: float | None = None, warmup_epochs: int | None = None,
          label_smoothing: float | None = None, time_steps: int | None = None, neuron: str = "loihi",
          seed: int = 0, augment: bool = True, micro_batches: int = 1, labels_per_class: int | None = None,
          init: str | Path | None = None, data_dir: str | Path | None = None, threads: int | None = None,
          resume: bool = False, force: bool = False) -> Trained:
    """``snn-deploy train``: quantization-aware training (``neuron="loihi"``) of zoo ``model`` on ``dataset``;
    writes ``output`` and ``<stem>.metrics.json``. Unset schedule values take the data set's defaults
    (``snn-deploy datasets``)."""
    from snn_deploy.training import DEFAULT_THREADS
    from snn_deploy.training.runtime import join_world, leave_world
    from snn_deploy.training.settings import TrainSettings, resolve
    from snn_deploy.training.trainer import metrics_path, train as run_training

    output = Path(output)
    if not resume:
        _check_output(output, force)
    init_path = Path(init) if init is not None else None
    if init_path is not None and not init_path.is_file():
        raise UserError(f"init={init_path} not found: pass a model file written by `snn-deploy pretrain`")
    settings = resolve(TrainSettings, model, dataset, T=time_steps, neuron=neuron, epochs=epochs,
                       batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_epochs=warmup_epochs,
                       label_smoothing=label_smoothing, seed=seed, augment=augment, micro_batches=micro_batches,
                       labels_per_class=labels_per_class, init=init_path.name if init_path else None)
    world = join_world()
    try:
        metrics = run_training(settings, output=output, data_dir=data_dir, resume=resume,
                               threads=threads or DEFAULT_THREADS, world=world, init_path=init_path)
    finally:
        leave_world(world)
    return Trained(output, metrics_path(output), metrics)


def _model_file(model: str | Path | ModelFile | SpikingNetwork) -> ModelFile:
    """A model file (path), a loaded one, or a zoo model built with :func:`create`."""
    from snn_deploy.modelfile import ModelFile, load_model
    from snn_deploy.models import SpikingNetwork
    from snn_deploy.neurons import neuron_mode

    if isinstance(model, ModelFile):
        return model
    if isinstance(model, SpikingNetwork):
        if model.arch is None:
            raise UserError("the model has no zoo name; build it with snn_deploy.create(NAME)")
        return ModelFile(model, model.arch, neuron_mode(model), None, {"source": "python"})
    return load_model(Path(model))


@dataclass(frozen=True)
class Quantized:
    """A quantized (integer-mode) model and the per-layer record of what quantization chose and clipped."""

    model: SpikingNetwork
    quantization: dict[str, Any]
    path: Path | None

    def __repr__(self) -> str:
        units = self.quantization.get("units", [])
        clipped = sum(u["weights_clipped"] for u in units)
        return (f"Quantized({self.model.arch!r}, {len(units)} layers, {clipped} weights clipped"
                f"{f', {str(self.path)!r}' if self.path else ''})")


def quantize(model: str | Path | ModelFile | SpikingNetwork, *, calibrate: str | None = None,
             output: str | Path | None = None, data_dir: str | Path | None = None, force: bool = False) -> Quantized:
    """``snn-deploy quantize``: fold BatchNorm and quantize to Loihi fixed point (``calibrate``: the data set
    whose training inputs set a float model's input scale). Writes ``output`` when given."""
    from snn_deploy.exporters.frontends.model_file import prepare
    from snn_deploy.modelfile import save_model
    from snn_deploy.workflows import calibration_inputs

    model_file = _model_file(model)
    if model_file.neuron_mode == "integer":
        raise UserError("the model is already quantized (integer neurons); quantize its float or loihi source")
    path = Path(output) if output is not None else None
    if path is not None:
        _check_output(path, force)
    prepared = prepare(model_file, calibration=calibration_inputs(model_file, calibrate, data_dir), rewrites=[])
    if path is not None:
        save_model(prepared.model, path, source=str(model) if isinstance(model, (str, Path)) else "python",
                   created_from="snn_deploy.api.quantize", quantization=prepared.quantization,
                   provenance={"calibration": calibrate})
    return Quantized(prepared.model, prepared.quantization, path)


def export(model: str | Path | ModelFile | SpikingNetwork, output: str | Path, *, target: str = "loihi2",
           calibrate: str | None = None, rewrites: tuple[str, ...] = (), input_on_host: bool = False,
           data_dir: str | Path | None = None, force: bool = False, attention: str | None = None) -> Bundle:
    """``snn-deploy export --target loihi2|loihi1`` (``loihi``: an alias of ``loihi2``): a Loihi bundle directory,
    returned loaded; ``attention``: ``export --attention`` (the spike products' chip lowering). (NIR, ONNX and netx single files: ``snn-deploy export --target nir|onnx|netx``.)"""
    from snn_deploy.exporters.formats.bundle import load_bundle as read_bundle, sha256
    from snn_deploy.workflows import BUNDLE_TARGETS, export as run_export

    if target not in BUNDLE_TARGETS:
        raise UserError(f"export(target={target!r}): the Python API writes Loihi bundles ({', '.join(BUNDLE_TARGETS)})"
                        f"; for {target} files run `snn-deploy export MODEL --target {target}`")
    output = Path(output)
    source = Path(model) if isinstance(model, (str, Path)) else None
    _check_output(output, force, inputs=(source,) if source else (), directory=True)
    record = {"path": source.name, "sha256": sha256(source)} if source else {"path": None, "sha256": None}
    done = run_export(_model_file(model), target, output, source_record=record, calibrate=calibrate,
                      data_dir=data_dir, rewrites=rewrites, input_on_host=input_on_host, force=force,
                      attention=attention)
    return read_bundle(done.path)


def load_bundle(path: str | Path) -> Bundle:
    """A bundle directory (hashes checked): ``.graph`` (the deployed graph) and ``.manifest``."""
    from snn_deploy.exporters.formats.bundle import load_bundle as read_bundle

    return read_bundle(Path(path))


# --- simulate and report --------------------------------------------------------------------------------------

@dataclass(repr=False)
class Results:
    """What ``snn-deploy simulate`` / ``report`` show, as plain data. ``report`` is ``report.json``'s content
    (schema: ``snn_deploy.sims.hardware.report.schema()``); the properties are its headline figures."""

    report: dict[str, Any]
    analysis: Analysis

    def __repr__(self) -> str:
        from snn_deploy.sims.hardware.report import energy_text, time_text

        hw, run = self.report["hardware"]["neurons"], self.report["run"]
        return (f"Results({run['samples']} samples, accuracy {_percent(self.accuracy)}, {hw['cores']} cores on "
                f"{hw['chips']} chip(s), step {time_text(self.time_per_step_ns)}, {energy_text(hw['energy_pj_total'])} "
                f"and {time_text(self.latency_ns)} per inference ({hw['labels']['total_energy']}); "
                f"{len(self.report['layers'])} layers in .layers)")

    @property
    def accuracy(self) -> float | None:
        """Simulated top-1 accuracy (0..1); None without a classifier readout or labels."""
        return self.report["run"]["accuracy"]

    @property
    def layers(self) -> list[dict[str, Any]]:
        """One flat record per layer: neurons, cores, spikes and firing rate, synaptic ops, energy (pJ) and its
        share, time per step (ns) and its share, bottleneck core and what limits it."""
        return [dict(layer) for layer in self.report["layers"]]

    @property
    def cores(self) -> list[dict[str, Any]]:
        """One flat record per core: layer, neurons, synapses, memory, fan-in/out, activity, busy time per step."""
        return [{k: v for k, v in core.items() if k != "utilisation"}
                | {f"utilisation_{m}": u for m, u in core["utilisation"].items()} for core in self.report["cores"]]

    @property
    def synaptic_ops(self) -> dict[str, float]:
        """Per layer: simulated synaptic operations per inference."""
        return {layer["name"]: layer["synaptic_ops"] for layer in self.report["layers"]}

    @property
    def spikes(self) -> dict[str, float]:
        """Per layer: simulated spikes per inference."""
        return {layer["name"]: layer["spikes"] for layer in self.report["layers"]}

    @property
    def energy_pj(self) -> dict[str, float]:
        """Energy per inference (calibrated or estimated: ``report["hardware"]["neurons"]["labels"]`` says which):
        ``total``, ``dynamic``, ``static`` (None where the profile has no static power figure: not modelled);
        their low / central / high ranges are ``report["hardware"]["neurons"]["ranges"]``."""
        hw = self.report["hardware"]["neurons"]
        return {"total": hw["energy_pj_total"], "dynamic": hw["energy_pj_dynamic"], "static": hw["energy_pj_static"]}

    @property
    def time_per_step_ns(self) -> float:
        """Time of one step with samples streamed back to back (calibrated or estimated, as the energy)."""
        return self.report["timing"]["step_ns"]

    @property
    def latency_ns(self) -> float:
        """Estimated time of one inference on its own (T steps plus the pipeline depth)."""
        return self.report["hardware"]["neurons"]["latency_ns"]

    @property
    def neurobench(self) -> dict[str, Any]:
        """NeuroBench's metrics in NeuroBench's result layout."""
        from snn_deploy.sims.hardware.report import neurobench_json

        return neurobench_json(self.report)


def simulate(bundle: str | Path | Bundle, dataset: str | None = None, *,
             inputs: np.ndarray | torch.Tensor | str | Path | None = None, labels: Any = None,
             layout: str = "chw", time_steps: int | None = None, samples: int | None = None, backend: str = "sim",
             target: str | None = None, batch_size: int = 32, data_dir: str | Path | None = None,
             lowerings: bool = False) -> Results:
    """``snn-deploy simulate``: run ``bundle`` on ``dataset``'s test split (the first ``samples``, default all), or
    on ``inputs`` with ``labels`` (optional: without them the accuracy is None), and estimate what it costs on the
    hardware ``target`` (``loihi1``, ``loihi2``; default: the bundle's).

    ``inputs``: a numpy array or tensor holding a batch, in ``layout`` ``chw`` ([N, C, H, W] held over the steps,
    or [T, N, C, H, W] one map per step) or Lava's ``whc`` ([N, W, H, C] or [N, W, H, C, T]); or a .npy path
    holding one sample, as ``simulate --input`` reads it. ``time_steps`` (``--time-steps``) runs that many steps
    instead of the bundle's T; a per-step array runs its own length. Either way the cost model prices inferences
    of the steps run, as the command does. ``lowerings``: also price every lowering of the spike products at the
    run's activity (the "spike-product lowerings" section :func:`report` then writes, as ``snn-deploy report``
    does by default).
    """
    from snn_deploy import workflows

    b = load_bundle(bundle) if isinstance(bundle, (str, Path)) else bundle
    source = workflows.Inputs(dataset, Path(inputs) if isinstance(inputs, str) else inputs, labels=labels,
                              steps=time_steps, layout=layout)
    analysis, _ = workflows.simulate(b, source, backend=backend, samples=samples, batch_size=batch_size,
                                     data_dir=data_dir, profile=target, lowerings=lowerings)
    return Results(workflows.report_data(analysis, b, source), analysis)


# --- verify and eval ------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Verification:
    """``snn-deploy verify``'s result: ``exact`` (every backend agrees with the first on every spike of every
    layer and on every prediction), ``first_divergence`` (layer, backend, step, sample; None when none),
    ``accuracy`` per backend, and ``report`` (``verify --json``'s content: per-layer spikes and mismatches)."""

    report: dict[str, Any]

    @property
    def exact(self) -> bool:
        return self.report["exact"]

    @property
    def first_divergence(self) -> dict[str, Any] | None:
        return self.report["first_divergence"]

    @property
    def accuracy(self) -> dict[str, float | None]:
        return self.report["accuracy"]

    @property
    def layers(self) -> list[dict[str, Any]]:
        return self.report["layers"]

    def __repr__(self) -> str:
        r, first = self.report, self.first_divergence
        verdict = ("identical" if self.exact else "predictions differ" if first is None else
                   f"first divergence: layer {first['node']} ({first['backend']}) at step {first['step']}, "
                   f"sample {first['sample']}")
        return (f"Verification({', '.join(r['backends'])} on {r['samples']} samples x {r['T']} steps, "
                f"{len(r['layers'])} layers: {verdict})")


def verify(model: str | Path | Bundle | ModelFile | SpikingNetwork, dataset: str | None = None, *,
           inputs: np.ndarray | torch.Tensor | str | Path | None = None, labels: Any = None, layout: str = "chw",
           time_steps: int | None = None, backends: str | list[str] | None = None, samples: int = 32,
           calibrate: str | None = None, data_dir: str | Path | None = None,
           reset_interval: int | None = None, per_layer: bool = False,
           attention: str | None = None) -> Verification:
    """``snn-deploy verify``: run the same inputs through every backend in ``backends`` (the first is the
    reference; default: torch, sim, lava, onnx for a model, sim and onnx for a bundle, sim and netx for a netx
    file) and compare every layer's spikes. ``model``: a model file (path, loaded, or from :func:`create`), a
    bundle (directory or loaded) or a lava-dl netx file (``reset_interval``: its state reset, as
    ``--reset-interval``; default lava-dl's, none). Inputs as :func:`simulate` takes them (a model file runs a data
    set). ``.report["resets"]``: the reset each backend ran with. ``per_layer`` (``--per-layer``): Lava runs one
    layer at a time, driven by the simulator's spikes; ``attention`` (``--attention``): a model file's spike-product
    lowering (a bundle keeps its own)."""
    from snn_deploy import workflows
    from snn_deploy.exporters.formats.bundle import Bundle
    from snn_deploy.sims.runs.verify import report_json

    if not isinstance(model, (str, Path, Bundle)):
        model = _model_file(model)
    source = workflows.Inputs(dataset, Path(inputs) if isinstance(inputs, str) else inputs, labels=labels,
                              steps=time_steps, layout=layout)
    result = workflows.verify(model, source, backends=backends, samples=samples, calibrate=calibrate,
                              data_dir=data_dir, reset_interval=reset_interval, per_layer=per_layer,
                              attention=attention)
    return Verification(report_json(result))


@dataclass(frozen=True, repr=False)
class Evaluation:
    """``snn-deploy eval``'s result: ``accuracy`` (0..1), ``correct``, ``total``, mean ``loss``, and ``record``
    (``eval --json``'s content)."""

    record: dict[str, Any]

    @property
    def accuracy(self) -> float:
        return self.record["accuracy"]

    @property
    def correct(self) -> int:
        return self.record["correct"]

    @property
    def total(self) -> int:
        return self.record["total"]

    @property
    def loss(self) -> float:
        return self.record["loss"]

    def __repr__(self) -> str:
        r = self.record
        return (f"Evaluation({r['arch']!r} on {r['dataset']} {r['split']}, {r['neuron_mode']} neurons: accuracy "
                f"{_percent(r['accuracy'])} ({r['correct']}/{r['total']}), loss {r['loss']:.4f})")


def eval(model: str | Path | ModelFile | SpikingNetwork, dataset: str, *, split: str = "test",
         neuron: str | None = None, batch_size: int = 128, threads: int = 1,
         data_dir: str | Path | None = None) -> Evaluation:
    """``snn-deploy eval``: accuracy of ``model`` (a model file, loaded, or from :func:`create`) on a split of
    ``dataset``, with its own neurons or ``neuron`` (``integer``: the integer model ``export`` deploys)."""
    from snn_deploy import workflows
    from snn_deploy.training.runtime import join_world, leave_world

    loaded = model if isinstance(model, (str, Path)) else _model_file(model)
    world = join_world()
    try:
        record = workflows.evaluate(loaded, dataset, split=split, neuron=neuron, batch_size=batch_size,
                                    threads=threads, data_dir=data_dir, world=world)
    finally:
        leave_world(world)
    return Evaluation(record)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def report(results: Results, output: str | Path, *, force: bool = False) -> Path:
    """``snn-deploy report``'s files for ``results`` in directory ``output``: report.html, report.json (+ schema),
    neurobench.json, layers.csv, cores.csv and the plots."""
    from snn_deploy.sims.hardware.report import report_files, write_dir

    output = Path(output)
    if output.exists() and not force:
        raise UserError(f"{output} already exists; pass force=True to replace it or choose another directory")
    return write_dir(output, report_files(results.report, results.analysis.activity), force=force)
