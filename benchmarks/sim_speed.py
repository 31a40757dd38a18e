"""Simulator throughput against Lava and the PyTorch integer-mode forward, side by side on one batch.

Usage: python benchmarks/sim_speed.py [--model spikformer-tiny] [--batch 8] [--lava-samples 4] [--repeats 3]
                                     [--threads 1] [--no-lava] [--command]

The same quantized tiny model (random weights, digits test images) runs the same batch through: the integer
PyTorch model (``model(x)`` in float64, no_grad), the simulator (``simulate``), and Lava's bit-accurate CPU models
(``lava_build.run``, one OS process per Lava process; compile time reported apart). Throughput is time steps x
samples per second, best of ``--repeats`` (Lava: one run on the first ``--lava-samples`` of the batch, since Lava
runs samples back to back and its throughput does not depend on the batch). All must predict the same classes.
The simulator is also timed without its register checks (``check_registers=False``, before and after the timed
run with them) to show what counting register overflows costs.

``--command`` also times what users run: ``snn-deploy simulate BUNDLE --dataset digits`` (in process, every test
digit, batches of 32: bundle and data loading, the counted simulation, mapping, cost model and report) on a bundle
of the same model, and the counted simulation alone (``run_dataset``: the simulator with the hardware's event
counts), each against the bare simulator (``simulate`` over the same samples and batches), and prints the ratios.
"""

from __future__ import annotations

import argparse
import time

import torch


def best_of(repeats: int, run) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spikformer-tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--lava-samples", type=int, default=4, help="samples of the batch Lava runs")
    parser.add_argument("--no-lava", action="store_true")
    parser.add_argument("--command", action="store_true", help="also time `snn-deploy simulate` (see above)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    import snn_deploy.models as zoo
    from snn_deploy.data.tensors import dataset_tensors
    from snn_deploy.exporters.frontends.zoo import lower
    from snn_deploy.quant import quantize
    from snn_deploy.sims.backends.simulator import readout_input, readout_logits, simulate
    from snn_deploy.graph import input_sequence

    model = zoo.create(args.model, mode="loihi").eval()
    quantize(model)
    graph = lower(model)
    x, _ = dataset_tensors(model.config, "digits", "test", args.batch, None)
    steps = graph.T * x.shape[-4]

    def forward():
        with torch.no_grad():
            return model(x.to(torch.float64))

    rows: dict[str, tuple[float, int]] = {}
    torch_s, torch_logits = best_of(args.repeats, forward)
    rows["torch integer-mode forward"] = (torch_s, steps)
    sim_s, result = best_of(args.repeats, lambda: simulate(graph, x))
    rows["simulator"] = (sim_s, steps)
    unchecked = min(best_of(args.repeats, lambda: simulate(graph, x, check_registers=False))[0] for _ in range(2))
    rows["simulator without register checks"] = (unchecked, steps)
    sim_s = min(sim_s, best_of(args.repeats, lambda: simulate(graph, x))[0])  # interleaved: both sides alike
    rows["simulator"] = (sim_s, steps)
    predictions = {"torch": torch_logits.argmax(1), "sim": result.predictions}
    lava_compile = None
    if not args.no_lava:
        from snn_deploy.sims.backends import lava_build

        n_lava = min(args.lava_samples, x.shape[-4])
        x_lava = x[..., :n_lava, :, :, :]
        run = lava_build.run(graph, input_sequence(graph, x_lava))
        rows["lava (stepping)"] = (run.run_s, graph.T * n_lava)
        rows["lava (with compile and start-up)"] = (run.wall_s, graph.T * n_lava)
        lava_compile = run.compile_s
        lava_pred = readout_logits(graph.readout, readout_input(graph, run.spikes)).argmax(1)
        predictions["lava"] = torch.cat([lava_pred, predictions["sim"][n_lava:]])

    print(f"{args.model}: batch {x.shape[-4]}, T = {graph.T}, {steps} sample-steps per run, "
          f"torch threads {args.threads}, best of {args.repeats} (Lava: one run"
          f"{f', compile {lava_compile:.2f} s' if lava_compile is not None else ''})")
    rate = {name: n / seconds for name, (seconds, n) in rows.items()}
    for name, (seconds, n) in rows.items():
        print(f"  {name:36s} {seconds:8.3f} s for {n:5d} sample-steps  {rate[name]:10.1f} steps x samples / s")
    print(f"  simulator / torch throughput: {rate['simulator'] / rate['torch integer-mode forward']:.2f}x")
    print(f"  register checks: simulator time x{rate['simulator without register checks'] / rate['simulator']:.3f} "
          f"(counted in the same pass: {len(result.registers)} (layer, register) pair(s) overflowed)")
    if "lava (stepping)" in rows:
        print(f"  simulator / lava throughput:  {rate['simulator'] / rate['lava (stepping)']:.0f}x stepping only, "
              f"{rate['simulator'] / rate['lava (with compile and start-up)']:.0f}x with compile")
    agree = all(bool((p == predictions["torch"]).all()) for p in predictions.values())
    print(f"  predictions agree across backends: {agree}")
    if args.command:
        time_command(model, graph, args.repeats)


def time_command(model, graph, repeats: int, batch: int = 32) -> None:
    """``snn-deploy simulate`` on a bundle of ``graph`` over the digits test split against the bare simulator."""
    import tempfile
    from pathlib import Path

    from click.testing import CliRunner

    from snn_deploy.cli import cli
    from snn_deploy.data.tensors import dataset_tensors
    from snn_deploy.exporters.formats.bundle import write_bundle
    from snn_deploy.graph import LOIHI2
    from snn_deploy.sims.runs.driver import run_dataset
    from snn_deploy.sims.backends.simulator import simulate

    x, y = dataset_tensors(model.config, "digits", "test", 1 << 30, None)
    n = x.shape[-4]

    def bare():
        for start in range(0, n, batch):
            simulate(graph, x[start:start + batch])

    bare_s, _ = best_of(repeats, bare)
    counted_s, _ = best_of(repeats, lambda: run_dataset(graph, x, y, batch_size=batch))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = write_bundle(graph, Path(tmp) / "model.loihi", target=LOIHI2, quantization={}, extra={})
        args = ["simulate", str(bundle), "--dataset", "digits", "--batch-size", str(batch), "--allow-violations"]

        def command():
            result = CliRunner().invoke(cli, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output

        command_s, _ = best_of(repeats, command)
    print(f"`snn-deploy simulate` ({n} digits, batch {batch}) against the bare simulator on the same batches:")
    print(f"  bare simulator                        {bare_s:8.3f} s  {n / bare_s:10.1f} samples / s")
    print(f"  counted simulation (run_dataset)      {counted_s:8.3f} s  {n / counted_s:10.1f} samples / s")
    print(f"  snn-deploy simulate (whole command)   {command_s:8.3f} s  {n / command_s:10.1f} samples / s")
    print(f"  counted / bare time: {counted_s / bare_s:.2f}x; command / bare time: {command_s / bare_s:.2f}x")


if __name__ == "__main__":
    main()
